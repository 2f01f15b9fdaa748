from shared import events, topics


def test_names_are_unique_and_dlqs_derived():
    names = [t.name for t in topics.TOPICS]
    assert len(names) == len(set(names))
    everything = topics.all_topic_partitions()
    assert all(everything[t.dlq] == topics.DLQ_PARTITIONS for t in topics.TOPICS)
    assert len(everything) == 2 * len(topics.TOPICS)


def test_each_topic_carries_an_event_class_with_its_key_field():
    for t in topics.TOPICS:
        model = t.event
        assert issubclass(model, events.Event) and getattr(events, model.__name__) is model, t.name
        assert t.key_field in model.model_fields, (t.name, t.key_field)
        assert t.partitions >= 1


def test_watch_events_are_keyed_by_user():
    assert topics.WATCH_EVENTS.key_field == "user_id"
    assert topics.by_name("watch.events") is topics.WATCH_EVENTS


def test_unknown_topic_lists_known_ones():
    try:
        topics.by_name("nope")
    except KeyError as exc:
        assert "watch.events" in str(exc)
