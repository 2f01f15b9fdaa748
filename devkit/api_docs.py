"""The platform's interface documents, generated from the code: AsyncAPI for the topics, OpenAPI for the HTTP API.

``clipstream docs`` writes ``docs/asyncapi.json`` and ``docs/openapi.json``; ``tests/unit/test_docs.py``
fails when the committed files differ from what this module generates, so they cannot drift.

* AsyncAPI 3.0 comes from FastStream's specification generator. The services consume raw bytes
  (their decoder validates and dead-letters; see ``shared/consumer.py``) and publish through
  ``broker.publish``, so their own brokers would document untyped channels. Instead a broker that is
  never connected declares, for every flow (:func:`flows`), a subscriber typed with the topic's
  event class or a publisher with it as schema; FastStream turns the pydantic models into the
  payload schemas. The registry's facts that FastStream has no argument for are then added as Kafka
  bindings: partitions (channel), the message key (message) and the consumer group (operation).
* OpenAPI is the gateway app's own ``app.openapi()`` (the app is built, never started: no broker).

Who publishes and who consumes each topic comes from the services' own declarations: ``CONSUMES``
(:class:`shared.topics.Consumes`, with the consumer group) and ``PUBLISHES``
(:class:`shared.topics.Publishes`) in each ``services/<name>/app.py``, read by :func:`flows` (the app
modules are imported, no app is built). ``tests/unit/test_docs.py`` checks the declarations against
the ``consume(...)`` and ``publish(...)`` calls in ``services/``.
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import unquote

from shared.events import DeadLetter, Event
from shared.topics import DLQ_PARTITIONS, TOPICS, Topic

ROOT = Path(__file__).resolve().parents[1]
DOCS_DIR = ROOT / "docs"
ASYNCAPI_FILE = "asyncapi.json"
OPENAPI_FILE = "openapi.json"
VERSION = "0.1.0"
SERVER = "kafka:9092"
"""The AsyncAPI server: the docker-compose stack's Kafka (any bootstrap address works the same)."""


@dataclass(frozen=True)
class Flow:
    """One service publishing to, or consuming from, one registry topic."""

    service: str
    action: Literal["publish", "consume"]
    topic: Topic
    group: str | None = None
    """Consumer group; ``<...>`` marks a part made at start-up (one group per instance)."""
    note: str = ""


def declarations() -> dict[str, ModuleType]:
    """Each registered service's app module, which declares ``CONSUMES`` and ``PUBLISHES`` (imported, not built)."""
    from services.registry import SERVICES

    return {service: importlib.import_module(f"services.{service}.app") for service in SERVICES}


@functools.cache
def flows() -> tuple[Flow, ...]:
    """Who publishes and who consumes each topic, from the services' declarations, in registry order."""
    out: list[Flow] = []
    for service, app in declarations().items():
        out += [Flow(service, "publish", p.topic, note=p.note) for p in app.PUBLISHES]
        out += [Flow(service, "consume", c.topic, c.group, c.note) for c in app.CONSUMES]
    return tuple(out)


def _handler(model: type[Event]):
    async def handler(event) -> None:  # pragma: no cover - documents the payload, never runs
        return None

    handler.__annotations__ = {"event": model, "return": None}
    handler.__doc__ = model.__doc__
    return handler


def _title(service: str, verb: str, topic: str) -> str:
    return f"{service} {verb} {topic}"


def asyncapi_schema() -> dict[str, Any]:
    """AsyncAPI 3.0 for every registry topic and dead-letter topic, with who sends and who receives."""
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    broker = KafkaBroker(SERVER, description="Apache Kafka (docker-compose: kafka:9092) or the embedded "
                         "Kafka-protocol broker; KAFKA_BOOTSTRAP_SERVERS selects it.")
    groups: dict[str, str] = {}
    for flow in flows():
        model, name = flow.topic.event, flow.topic.name
        if flow.action == "publish":
            title = _title(flow.service, "publishes", name)
            broker.publisher(name, title=title, description=flow.topic.description
                             + (f" Sent on {flow.note}." if flow.note else ""), schema=model)
        else:
            title = _title(flow.service, "consumes", name)
            description = flow.topic.description + (f" {flow.service}: {flow.note}." if flow.note else "")
            broker.subscriber(name, group_id=flow.group, title=title, description=description)(_handler(model))
            groups[title] = flow.group or ""
            dlq_title = _title(flow.service, "publishes", flow.topic.dlq)
            broker.publisher(flow.topic.dlq, title=dlq_title, schema=DeadLetter,
                             description=f"Messages of {name} that {flow.service} could not handle, with the reason "
                                         "and the original bytes (shared/consumer.py).")
    spec = AsyncAPI(broker, title="ClipStream events", version=VERSION, schema_version="3.0.0",
                    description="Every topic of the registry (shared/topics.py) with its event model "
                                "(shared/events.py), the services that publish and consume it, its message "
                                "key and its partitions. Generated by `clipstream docs`; do not edit.")
    doc = json.loads(spec.to_specification().to_json())
    _add_kafka_bindings(doc, groups)
    # FastStream's order of channels and schemas varies between runs (hash order): sort them, so
    # that the same code always gives the same bytes
    for maps, name in ((doc, "channels"), (doc, "operations"), (doc["components"], "messages"),
                       (doc["components"], "schemas")):
        maps[name] = dict(sorted(maps[name].items()))
    return doc


def _registry_topic(address: str) -> tuple[Topic, bool]:
    """The registry topic of a channel address, and whether the address is its dead-letter topic."""
    for topic in TOPICS:
        if address == topic.name:
            return topic, False
        if address == topic.dlq:
            return topic, True
    raise KeyError(f"channel {address!r} is not in the topic registry")


def _add_kafka_bindings(doc: dict[str, Any], groups: dict[str, str]) -> None:
    messages = doc["components"]["messages"]
    for channel in doc["channels"].values():
        topic, dlq = _registry_topic(channel["address"])
        binding = channel.setdefault("bindings", {}).setdefault("kafka", {})
        binding["partitions"] = DLQ_PARTITIONS if dlq else topic.partitions
        if dlq:
            key = {"type": "string", "description": f"the key of the {topic.name} message that failed "
                                                    f"(its {topic.key_field})"}
        else:
            key = {"type": "string", "description": f"the event's {topic.key_field}: messages with one key "
                                                    "stay in order on one partition"}
        for ref in channel["messages"].values():
            message = messages[_unref(ref["$ref"])]
            message.setdefault("bindings", {})["kafka"] = {"key": key, "bindingVersion": "0.4.0"}
        channel.setdefault("x-clipstream", {}).update(
            {"topic": topic.name, "key_field": "source key" if dlq else topic.key_field,
             "event": "DeadLetter" if dlq else topic.event.__name__})
    for op_id, operation in doc["operations"].items():
        if operation["action"] != "receive":
            continue
        group = groups[op_id]
        schema = ({"type": "string", "pattern": "^" + group.split("<", 1)[0].replace(".", r"\.") + ".+$",
                   "description": "one group per instance: " + group} if "<" in group
                  else {"type": "string", "enum": [group]})
        operation.setdefault("bindings", {})["kafka"] = {"groupId": schema, "bindingVersion": "0.4.0"}


def _unref(ref: str) -> str:
    prefix = "#/components/messages/"
    if not ref.startswith(prefix):
        raise ValueError(f"unexpected message reference {ref!r}")
    return unquote(ref[len(prefix):])


def openapi_schema() -> dict[str, Any]:
    """The gateway's OpenAPI document (the app is built, not started: no broker is contacted)."""
    from services.gateway.app import create_app
    from shared.settings import Settings

    return create_app(Settings()).openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name -> content, as ``clipstream docs`` writes them."""
    return {ASYNCAPI_FILE: render(asyncapi_schema()), OPENAPI_FILE: render(openapi_schema())}


def write_docs(out: Path = DOCS_DIR, check: bool = False) -> list[str]:
    """Write the documents (or, with ``check``, only compare); returns the names that differed."""
    stale = []
    for name, text in generated().items():
        path = out / name
        if not path.exists() or path.read_text() != text:
            stale.append(name)
            if not check:
                out.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    return stale
