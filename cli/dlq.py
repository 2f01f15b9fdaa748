"""``clipstream dlq list|replay TOPIC``: inspect a topic's dead letters and send them back after a fix.

A consumer that cannot handle a message writes a :class:`~shared.events.DeadLetter` to
``<topic>.dlq`` (the original bytes in base64, the reason, the detail, the source partition and
offset) and goes on. ``list`` shows them; ``replay`` publishes each chosen letter's original bytes,
with its original key (so to the same partition), to the source topic again, once whatever made
it fail is fixed (a handler bug, an outage, a consumer that now supports the schema version).

A replayed record carries Kafka headers (the event bytes are exactly the original ones):

* ``clipstream-dlq-reason`` and ``clipstream-dlq-detail``: why it had been dead-lettered;
* ``clipstream-dlq-origin``: ``<dlq topic>:<partition>:<offset>`` of the letter it came from;
* ``clipstream-replay-count``: how many times this payload has been replayed, this time included.

The count comes from the record the letter points at (its source partition and offset): when that
record was itself a replay, its header says how many times, and this replay adds one (when the
topic's retention has deleted that record, the count starts again at 1; ``list`` says so). A letter
whose next count would pass ``--max-replays`` is refused, so a message that fails every time
cannot go round for ever. Letters whose payload was cut at the consumer's size limit, or that
hold no payload (a tombstone), are refused too: their original bytes are not there to send.

``replay`` does not remember what it sent: run twice, it sends twice. Preview with ``--dry-run``,
narrow with ``--reason``, ``--offset`` and ``--limit``; consumers are idempotent by the events'
ids (``video_id``, ``request_id``, ``event_id``), so a repeat is harmless but not free.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from shared import topics
from shared.events import DeadLetter
from shared.replay import records_to_end

REASON_HEADER = "clipstream-dlq-reason"
DETAIL_HEADER = "clipstream-dlq-detail"
ORIGIN_HEADER = "clipstream-dlq-origin"
COUNT_HEADER = "clipstream-replay-count"
DETAIL_HEADER_CHARS = 500
DEFAULT_MAX_REPLAYS = 3
# room for the largest event a consumer accepts (CLIPSTREAM_KAFKA_MAX_MESSAGE_BYTES) and its headers
MAX_REQUEST_BYTES = 8 * 1024 * 1024
FETCH_WAIT_MS = 300


def source_topic(name: str) -> str:
    """``watch.events`` for ``watch.events`` or ``watch.events.dlq``."""
    return name.removesuffix(topics.DLQ_SUFFIX)


def header(headers: Iterable[tuple[str, bytes]] | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if value is not None else None
    return None


def replay_count(headers: Iterable[tuple[str, bytes]] | None) -> int:
    value = header(headers, COUNT_HEADER)
    try:
        return max(0, int(value)) if value is not None else 0
    except ValueError:
        return 0


@dataclass
class Letter:
    """One record of a dead-letter topic, decoded."""

    topic: str
    """The dead-letter topic."""
    partition: int
    offset: int
    key: bytes | None
    letter: DeadLetter | None
    """None when the record is not a DeadLetter (``error`` says why)."""
    error: str | None = None
    replays: int = 0
    """Times the payload had been replayed before it failed this time (from its source record)."""
    source_found: bool = False
    """Whether the source record was still there to read the count from."""
    decodes_now: str | None = None
    """'ok' when the payload decodes as the source topic's event with this code; else the rejection."""

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.letter.payload_b64) if self.letter else b""

    @property
    def replayable(self) -> str | None:
        """Why this letter cannot be replayed, or None."""
        if self.letter is None:
            return f"not a dead letter: {self.error}"
        if self.letter.payload_size == 0 or not self.letter.payload_b64:
            return "no payload (a tombstone or an empty message)"
        if len(self.payload) < self.letter.payload_size:
            return (f"the payload was cut at the consumer's size limit ({len(self.payload)} of "
                    f"{self.letter.payload_size} bytes kept)")
        return None

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dlq_topic": self.topic, "dlq_partition": self.partition, "dlq_offset": self.offset,
                               "key": self.key.decode("utf-8", "replace") if self.key is not None else None}
        if self.letter is None:
            return {**out, "error": self.error}
        lt = self.letter
        return {**out, "reason": lt.reason.value, "detail": lt.detail, "source_topic": lt.source_topic,
                "source_partition": lt.partition, "source_offset": lt.offset, "service": lt.service,
                "failed_at": lt.failed_at.isoformat(), "payload_size": lt.payload_size,
                "replays_before": self.replays, "source_found": self.source_found, "decodes_now": self.decodes_now,
                "replayable": self.replayable is None, "payload_b64": lt.payload_b64}


def parse(record: Any) -> Letter:
    try:
        letter = DeadLetter.model_validate_json(record.value or b"")
        return Letter(record.topic, record.partition, record.offset, record.key, letter)
    except (ValidationError, ValueError) as exc:
        return Letter(record.topic, record.partition, record.offset, record.key, None,
                      error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


def decodes_now(letter: Letter) -> str | None:
    """Whether the payload decodes as its topic's event with the codec of this checkout."""
    if letter.letter is None:
        return None
    from shared.codec import Rejection, decode
    from shared.settings import KafkaSettings

    try:
        model = topics.by_name(letter.letter.source_topic).event
    except KeyError:
        return "unknown source topic"
    result = decode(letter.payload, model, KafkaSettings().max_message_bytes)
    return f"{result.reason.value}: {result.detail}" if isinstance(result, Rejection) else "ok"


async def source_counts(bootstrap: str, letters: Sequence[Letter]) -> None:
    """Fill each letter's ``replays`` from the headers of the record it points at."""
    wanted: dict[TopicPartition, list[Letter]] = {}
    for item in letters:
        if item.letter is not None:
            tp = TopicPartition(item.letter.source_topic, item.letter.partition)
            wanted.setdefault(tp, []).append(item)
    if not wanted:
        return
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=FETCH_WAIT_MS)
    await consumer.start()
    try:
        for tp, items in wanted.items():
            consumer.assign([tp])
            for item in sorted(items, key=lambda i: i.letter.offset):
                consumer.seek(tp, item.letter.offset)
                for _ in range(3):  # an empty fetch: past the end, or the broker is slow to answer
                    rows = (await consumer.getmany(tp, timeout_ms=FETCH_WAIT_MS, max_records=1)).get(tp, [])
                    if rows:
                        if rows[0].offset == item.letter.offset:
                            item.replays, item.source_found = replay_count(rows[0].headers), True
                        break
    finally:
        await consumer.stop()


async def read_letters(bootstrap: str, topic: str, *, reason: str | None = None, offsets: Sequence[int] = (),
                       limit: int | None = None) -> list[Letter]:
    """The letters of ``<topic>.dlq`` that match, oldest first, with their replay counts."""
    dlq = source_topic(topic) + topics.DLQ_SUFFIX
    found: list[Letter] = []
    async for record in records_to_end(bootstrap, dlq):
        item = parse(record)
        if reason is not None and (item.letter is None or item.letter.reason.value != reason):
            continue
        if offsets and item.offset not in offsets:
            continue
        found.append(item)
        if limit is not None and len(found) >= limit:
            break
    await source_counts(bootstrap, found)
    for item in found:
        item.decodes_now = decodes_now(item)
    return found


@dataclass
class Outcome:
    replayed: list[tuple[Letter, int]] = field(default_factory=list)
    """(letter, its replay count now)."""
    refused: list[tuple[Letter, str]] = field(default_factory=list)


def replay_headers(item: Letter, count: int) -> list[tuple[str, bytes]]:
    lt = item.letter
    assert lt is not None
    return [("content-type", b"application/json"),
            (REASON_HEADER, lt.reason.value.encode()),
            (DETAIL_HEADER, lt.detail[:DETAIL_HEADER_CHARS].encode()),
            (ORIGIN_HEADER, f"{item.topic}:{item.partition}:{item.offset}".encode()),
            (COUNT_HEADER, str(count).encode())]


async def replay(bootstrap: str, letters: Sequence[Letter], *, max_replays: int = DEFAULT_MAX_REPLAYS,
                 dry_run: bool = False) -> Outcome:
    """Publish each replayable letter's original bytes and key to its source topic, with the headers."""
    outcome = Outcome()
    todo: list[tuple[Letter, int]] = []
    for item in letters:
        why = item.replayable
        count = item.replays + 1
        if why is None and count > max_replays:
            why = f"replayed {item.replays} times already (max {max_replays})"
        if why is not None:
            outcome.refused.append((item, why))
        else:
            todo.append((item, count))
    if dry_run or not todo:
        outcome.replayed = todo
        return outcome
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=MAX_REQUEST_BYTES, acks="all")
    await producer.start()
    try:
        sent = []
        for item, count in todo:
            key = item.key if item.key is not None else (item.letter.key.encode() if item.letter.key else None)
            sent.append(await producer.send(item.letter.source_topic, item.payload, key=key,
                                            headers=replay_headers(item, count)))
        await asyncio.gather(*sent)  # every one acknowledged before we say so
    finally:
        await producer.stop()
    outcome.replayed = todo
    return outcome


# ----------------------------------------------------------------------------------------- CLI


def _short(text: str | None, n: int = 120) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def run_list(bootstrap: str, topic: str, limit: int | None, as_json: bool, reason: str | None = None) -> int:
    letters = asyncio.run(read_letters(bootstrap, topic, reason=reason, limit=limit))
    if as_json:
        for item in letters:
            print(json.dumps(item.row(), ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    dlq = source_topic(topic) + topics.DLQ_SUFFIX
    table = Table(title=f"{len(letters)} dead letters on {dlq}" + (f" (first {limit})" if limit else ""))
    for col in ("offset", "failed at", "service", "reason", "detail", "source", "key", "replays", "decodes now"):
        table.add_column(col, overflow="fold")
    for item in letters:
        lt = item.letter
        if lt is None:
            table.add_row(str(item.offset), "", "", "[red]not a dead letter[/]", _short(item.error), "", "", "", "")
            continue
        table.add_row(str(item.offset), lt.failed_at.strftime("%Y-%m-%d %H:%M:%S"), lt.service, lt.reason.value,
                      _short(lt.detail), f"{lt.source_topic}[{lt.partition}]@{lt.offset}",
                      _short(lt.key, 40), str(item.replays) if item.source_found else f"{item.replays} (source gone)",
                      _short(item.decodes_now, 60))
    Console().print(table)
    return 0


def run_replay(bootstrap: str, topic: str, reason: str | None, offsets: Sequence[int], limit: int | None,
               dry_run: bool, max_replays: int) -> int:
    async def go() -> Outcome:
        letters = await read_letters(bootstrap, topic, reason=reason, offsets=offsets, limit=limit)
        return await replay(bootstrap, letters, max_replays=max_replays, dry_run=dry_run)

    outcome = asyncio.run(go())
    verb = "would replay" if dry_run else "replayed"
    for item, count in outcome.replayed:
        lt = item.letter
        note = "" if item.decodes_now == "ok" else f"; note: it does not decode here ({_short(item.decodes_now, 80)})"
        print(f"{verb} {item.topic}@{item.offset} -> {lt.source_topic} (key {lt.key}, {lt.reason.value}, "
              f"replay {count} of at most {max_replays}){note}")
    for item, why in outcome.refused:
        print(f"refused {item.topic}@{item.offset}: {why}")
    print(f"{verb} {len(outcome.replayed)}, refused {len(outcome.refused)}")
    return 1 if outcome.refused else 0


def add_parser(sub: Any) -> Any:
    """Register ``dlq list`` and ``dlq replay`` on the ``clipstream`` parser."""
    p = sub.add_parser("dlq", help="list a topic's dead letters, or replay them to the topic after a fix")
    actions = p.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="the letters of <TOPIC>.dlq: reason, detail, source offset, replays")
    ls.add_argument("topic", help="the source topic (watch.events) or its dead-letter topic (watch.events.dlq)")
    ls.add_argument("--limit", type=int, help="only the first N letters")
    ls.add_argument("--reason", help="only letters of this reason (malformed_json, rejected, ...)")
    ls.add_argument("--json", action="store_true", help="one JSON object per letter, the payload in base64")
    ls.add_argument("--bootstrap")
    rp = actions.add_parser("replay", help="publish letters' original bytes and keys to the source topic again")
    rp.add_argument("topic", help="the source topic (watch.events) or its dead-letter topic (watch.events.dlq)")
    rp.add_argument("--reason", help="only letters of this reason")
    rp.add_argument("--offset", type=int, action="append", default=[],
                    help="only the letter at this offset of the dead-letter topic (repeatable)")
    rp.add_argument("--limit", type=int, help="at most N letters")
    rp.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")
    rp.add_argument("--max-replays", type=int, default=DEFAULT_MAX_REPLAYS,
                    help=f"refuse a payload replayed this many times already (default {DEFAULT_MAX_REPLAYS})")
    rp.add_argument("--bootstrap")
    return p


def main(args: Any) -> int:
    from shared.events import DeadLetterReason
    from shared.settings import KafkaSettings

    known = [r.value for r in DeadLetterReason]
    if args.reason is not None and args.reason not in known:
        raise SystemExit(f"unknown reason {args.reason!r}; dead letters have one of: {', '.join(known)}")
    bootstrap = args.bootstrap or KafkaSettings().bootstrap_servers
    if args.action == "list":
        return run_list(bootstrap, args.topic, args.limit, args.json, args.reason)
    return run_replay(bootstrap, args.topic, args.reason, args.offset, args.limit, args.dry_run, args.max_replays)

