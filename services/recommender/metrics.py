"""The recommender's metrics, named clipstream_recommender_<what>_<unit>."""

from __future__ import annotations

from shared.metrics import counter, gauge, histogram

SERVICE = "recommender"

events = counter(SERVICE, "events_applied",
                 "Watch events by result: applied, duplicate (event_id seen), already_applied (offset before the "
                 "state's position), out_of_position (after it: the consumer is sent back), not_owned (partition "
                 "not held here).", ("result",))
unknown_videos = counter(SERVICE, "unknown_video_events", "Watch events for videos not (yet) in the catalogue.")
freshness = histogram(SERVICE, "freshness", "Event time to state applied.",
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
apply_lag = histogram(SERVICE, "apply_lag", "Record timestamp (its producer's send, or the broker's append) to state "
                      "applied: the pipeline's own delay, whatever time the event itself carries.",
                      buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
stage_seconds = histogram(SERVICE, "feed_stage_duration", "Time per feed pipeline stage.", ("stage",))
feed_seconds = histogram(SERVICE, "feed_duration", "Time to build one feed.")
candidates = counter(SERVICE, "candidates", "Candidates contributed, by source.", ("source",))
filtered = counter(SERVICE, "filtered", "Candidates dropped, by filter.", ("filter",))
lag = gauge(SERVICE, "consumer_lag", "messages",
            "Messages behind the end of each partition of every topic the recommender reads, by consumer group "
            "(watch.events: the replica group; videos.embedded and the changelog: this replica's own reader).",
            ("topic", "group", "partition"))


def report_lag(topic: str, group: str, behind: dict[int, int]) -> None:
    """``behind``: messages behind each partition's end (``shared.replay.Tail.lag``)."""
    for partition, messages in behind.items():
        lag.labels(topic, group, str(partition)).set(messages)


RESTORE_SOURCES = ("changelog", "local", "source")
restores = counter(SERVICE, "restores",
                   "Partitions restored at assignment, by source: changelog (the group's changelog topic), local (this "
                   "replica's state file, at least as new as the changelog), source (rebuilt from watch.events: no "
                   "changelog, or a changelog record that failed to decode).", ("source",))
restore_seconds = histogram(SERVICE, "restore_duration", "Time to restore one partition at assignment, by source.",
                            ("source",), buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
restored_offset = gauge(SERVICE, "resume", "offset",
                        "The watch.events offset a partition's consumption resumed from at its last restore here (the "
                        "offset its restored state reflects), by partition.", ("partition",))
changelog_flushes = counter(SERVICE, "changelog_flushes",
                            "Flushes written to the changelog, by kind: delta (what changed) or snapshot (the whole "
                            "partition, which bounds restore time).", ("kind",))
changelog_rejected = counter(SERVICE, "changelog_rejected",
                             "Changelog records that failed to decode at restore (dead-lettered; the partition is "
                             "rebuilt from watch.events instead).")
replayed_steps_without_vector = counter(SERVICE, "replayed_steps_without_vector",
                                        "Users' stored steps applied at a restore whose video has left the catalogue "
                                        "since they were applied live (the user's vectors then differ from before).")
state_file_rejected = counter(SERVICE, "state_file_rejected",
                              "Local state files that failed to decode at restore (the partition is restored from "
                              "the changelog or rebuilt from watch.events instead).")
not_owner = counter(SERVICE, "misdirected_requests",
                    "Per-user reads for a partition this replica does not serve (answered 421: the gateway asks the "
                    "owner).")
users = gauge(SERVICE, "users", "count", "Users whose state this instance holds.")
videos = gauge(SERVICE, "catalogue_videos", "count", "Videos in this instance's catalogue.")
embeddings_skipped = counter(
    SERVICE, "embeddings_skipped",
    "videos.embedded events kept out of the catalogue, by reason: model_version (written by another model than the "
    "one prepared here), vector_size (a vector or search vector of another size than the store's), invalid_vector "
    "(a value that is not finite).", ("reason",))
SKIP_REASONS = ("model_version", "vector_size", "invalid_vector")
user_vectors_dropped = counter(
    SERVICE, "user_vectors_dropped",
    "Users whose stored vectors were dropped at load, built for another model (version or size); they are rebuilt "
    "from later watch events.")
state_write_failures = counter(SERVICE, "state_write_failures", "State writes that failed (retried at the next flush).")
for _result in ("applied", "duplicate", "already_applied", "out_of_position", "not_owned"):
    events.labels(_result)  # every series at 0 from the start: rate() sees the first of each
for _source in RESTORE_SOURCES:
    restores.labels(_source)
for _kind in ("delta", "snapshot"):
    changelog_flushes.labels(_kind)
for _reason in SKIP_REASONS:
    embeddings_skipped.labels(_reason)
reach_users_refreshed = counter(SERVICE, "reach_users_refreshed",
                                "Users whose reach point (long-term vector and bar) was written to the users' "
                                "collection for creator insights.")
reach_refresh_errors = counter(SERVICE, "reach_refresh_errors", "Reach refresh rounds that failed (retried).")
reach_pending = gauge(SERVICE, "reach_pending", "users",
                      "Users whose reach point is out of date (refreshed at most insights_refresh_batch a round).")
insights_seconds = histogram(SERVICE, "insights_duration", "Time to answer one video's insights part (reach "
                                                           "search, suggestions).")
uploads_known = gauge(SERVICE, "insights_uploads_known", "uploads",
                      "Unpublished uploads' results (insights.completed) held for creator insight polls.")
