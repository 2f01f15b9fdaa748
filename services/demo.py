"""``clipstream demo`` / ``make demo``: the platform on the embedded broker, shown end to end.

Starts the embedded broker and every service that exists as a child process (the same
``clipstream run`` entry point as production), then acts as a platform backend: makes a few
clips, registers them, sends watch events, sends some bad input, and shows what travelled
through which topic. ``--serve`` keeps it all running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import shutil
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import track
from rich.table import Table

from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.corpus import make_corpus
from shared.runtime.processes import ServiceProcess
from services.tail import tail

DEMO_KEY = "demo-key"


def make_clips(media: Path, count: int) -> list[dict]:
    """Clips from the project's corpus generator, as a platform would register them."""
    rows = make_corpus(media, count, seed=7, seconds=3.0)
    return [{"video_id": f"demo-{i:02d}", "source": r["file"], "title": r["title"], "tags": r["tags"],
             "topic": r["topic"], "creator_id": f"creator-{i % 3}"} for i, r in enumerate(rows)]


def watch_session(user: str, videos: list[str], rng: random.Random) -> list[dict]:
    events = []
    for video in rng.sample(videos, k=min(4, len(videos))):
        events.append({"user_id": user, "video_id": video, "action": "impression"})
        action = rng.choice(["complete", "skip", "like", "progress"])
        events.append({"user_id": user, "video_id": video, "action": action,
                       "watch_ms": rng.randint(300, 2000), "duration_ms": 2000})
    return events


def wait_for_catalogue(api: httpx.Client, videos: int, timeout_s: float = 60) -> None:
    """Until the recommender has the embedded videos (it builds its view from videos.embedded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(api.get("/v1/feed/nobody", params={"k": 100}).json().get("items", [])) >= videos - 1:
            return
        time.sleep(0.2)


def wait_for_feed_change(api: httpx.Client, user: str, before: dict, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    feed = before
    while time.monotonic() < deadline:
        feed = api.get(f"/v1/feed/{user}", params={"k": 5}).json()
        if not feed["cold_start"]:
            return feed
        time.sleep(0.1)
    return feed


def brief(value: bytes | None) -> str:
    """The fields a person reads first."""
    try:
        data = json.loads(value or b"")
    except ValueError:
        return repr(value)[:80]
    keys = ("video_id", "source", "topic", "user_id", "action", "watch_ms")
    return " ".join(f"{k}={data[k]}" for k in keys if data.get(k) not in (None, ""))


def bad_requests(api: httpx.Client) -> list[tuple[str, int, str]]:
    """Each bad input a platform might send, and what the gateway answered."""
    cases = [
        ("wrong API key", dict(url="/v1/events/watch", json={"user_id": "u", "video_id": "v", "action": "play"},
                               headers={"X-API-Key": "nope"})),
        ("path outside media root", dict(url="/v1/videos", json={"source": "../../etc/passwd", "creator_id": "c"})),
        ("URL to loopback", dict(url="/v1/videos", json={"source": "http://127.0.0.1/admin", "creator_id": "c"})),
        ("URL to link-local metadata", dict(url="/v1/videos", json={"source": "http://169.254.169.254/", "creator_id": "c"})),
        ("missing field", dict(url="/v1/events/watch", json={"user_id": "u", "action": "play"})),
        ("malformed JSON", dict(url="/v1/events/watch", content=b"{not json", headers={"content-type": "application/json"})),
        ("10 MB body", dict(url="/v1/events/watch/batch", content=b"x" * (10 * 1024 * 1024),
                            headers={"content-type": "application/json"})),
    ]
    out = []
    for label, req in cases:
        resp = api.post(**req)
        detail = resp.json().get("detail")
        out.append((label, resp.status_code, detail if isinstance(detail, str) else str(detail)[:100]))
    return out


def run_demo(workdir: str = "var/demo", serve: bool = False) -> int:
    console = Console()
    root = Path(workdir).resolve()
    media, logs = root / "media", root / "logs"
    # the embedded broker keeps nothing between runs (memory storage): state left by an earlier run
    # would hold offsets and vectors of events that no longer exist (and may predate a schema change)
    for stale in ("recommender", "qdrant"):
        shutil.rmtree(root / stale, ignore_errors=True)
    media.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    with console.status("starting the embedded broker (Tansu)"):
        broker = EmbeddedBroker(log_path=logs / "broker.log").start()
    console.print(f"[green]✓[/] embedded broker on [bold]{broker.bootstrap}[/], registry topics created")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "CLIPSTREAM_GATEWAY_MEDIA_ROOT": str(media),
        "CLIPSTREAM_GATEWAY_API_KEYS": DEMO_KEY,
    }
    env.update({"CLIPSTREAM_FETCH_MEDIA_ROOT": str(media), "CLIPSTREAM_QDRANT_DATA_DIR": str(root / "qdrant"),
                "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(root / "artefacts")})
    recommender = ServiceProcess("recommender", free_port(), log_path=logs / "recommender.log",
                                 env={**env, "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(root / "recommender")})
    env["CLIPSTREAM_GATEWAY_RECOMMENDER_URL"] = recommender.url
    gateway = ServiceProcess("gateway", free_port(), env=env, log_path=logs / "gateway.log")
    encoder = ServiceProcess("encoder", free_port(), env=env, log_path=logs / "encoder.log")
    try:
        with console.status("starting the gateway, the encoder and the recommender (loading models)"):
            gateway.start()
            encoder.start()
            recommender.start()
        console.print(f"[green]✓[/] gateway on [bold]{gateway.url}[/] (OpenAPI at {gateway.url}/docs), "
                      f"encoder metrics on {encoder.url}/metrics, recommender on {recommender.url}")
        clips = make_clips(media, 12)
        (media / "not_a_video.mp4").write_text("a text file with a video's name")
        clips.append({**clips[0], "video_id": "demo-reupload"})  # the same file again: a duplicate
        clips.append({**clips[1], "video_id": "demo-broken", "source": "not_a_video.mp4"})
        with httpx.Client(base_url=gateway.url, headers={"X-API-Key": DEMO_KEY}, timeout=30) as api:
            for clip in track(clips, description="registering uploads"):
                api.post("/v1/videos", json=clip).raise_for_status()
            embedded: list[tuple[str, int, int, bytes | None]] = []
            with console.status("waiting for the encoder to embed the uploads"):
                asyncio.run(tail(broker.bootstrap, [topics.VIDEOS_EMBEDDED.name, topics.VIDEOS_UPLOADED.dlq],
                                 from_beginning=True, count=len(clips), timeout_s=60,
                                 emit=lambda *row: embedded.append(row)))
            users = [f"user-{u}" for u in range(3)]
            wait_for_catalogue(api, len(clips) - 1)
            before = {u: api.get(f"/v1/feed/{u}", params={"k": 5}).json() for u in users}
            rng = random.Random(11)
            videos = [c["video_id"] for c in clips if c["video_id"] != "demo-broken"]
            events = [e for u in users for e in watch_session(u, videos, rng)]
            batch = api.post("/v1/events/watch/batch", json={"events": events}).raise_for_status().json()
            console.print(f"[green]✓[/] {len(clips)} uploads and {batch['accepted']} watch events accepted by the gateway")
            after = {u: wait_for_feed_change(api, u, before[u]) for u in users}
            refused = bad_requests(api)
            metrics = api.get("/metrics").text

        shown: list[tuple[str, int, int, str]] = []
        names = [topics.VIDEOS_UPLOADED.name, topics.WATCH_EVENTS.name]
        asyncio.run(tail(broker.bootstrap, names, from_beginning=True, count=len(clips) + len(events), timeout_s=5,
                         emit=lambda *row: shown.append(row)))
        table = Table(title=f"{len(shown)} events read back from the broker's topics (first 12)")
        for col in ("topic", "partition", "offset", "event"):
            table.add_column(col, overflow="fold")
        for topic, part, offset, text in sorted(shown, key=lambda r: (r[0], r[1], r[2]))[:12]:
            table.add_row(topic, str(part), str(offset), brief(text))
        console.print(table)

        done = Table(title=f"encoder output: {len(embedded)} events on videos.embedded and its dead-letter topic")
        for col in ("topic", "video", "topic label", "keyframes", "duration s", "duplicate of / reason"):
            done.add_column(col, overflow="fold")
        for topic, _, _, value in sorted(embedded, key=lambda r: (r[0], r[3])):
            data = json.loads(value)
            if topic.endswith(".dlq"):
                done.add_row(f"[red]{topic}[/]", data.get("key") or "", "", "", "", f"{data['reason']}: {data['detail']}")
            else:
                done.add_row(topic, data["video_id"], str(data.get("topic")), str(data["keyframes"]),
                             f"{data['duration_s']:.1f}", data.get("duplicate_of") or "")
        console.print(done)

        for user in users:
            feeds = Table(title=f"{user}: feed before and after a session (via the gateway)")
            for col in ("before", "reason", "after", "reason "):
                feeds.add_column(col, overflow="fold")
            b_items, a_items = before[user]["items"], after[user]["items"]
            for i in range(max(len(b_items), len(a_items))):
                b = b_items[i] if i < len(b_items) else {}
                a = a_items[i] if i < len(a_items) else {}
                feeds.add_row(f"{b.get('video_id', '')} {b.get('topic') or ''}", b.get("reason", ""),
                              f"{a.get('video_id', '')} {a.get('topic') or ''}", a.get("reason", ""))
            console.print(feeds)

        bad = Table(title="bad input, refused with a reason")
        for col in ("input", "HTTP", "answer"):
            bad.add_column(col, overflow="fold")
        for label, code, detail in refused:
            bad.add_row(label, str(code), detail)
        console.print(bad)
        console.print("[bold]gateway metrics[/] (excerpt):")
        for line in metrics.splitlines():
            if line.startswith(("clipstream_gateway_published_messages_total", "clipstream_gateway_rejected_requests_total")):
                console.print("  " + line, highlight=False)
        for line in httpx.get(f"{encoder.url}/metrics").text.splitlines():
            if line.startswith(("clipstream_encoder_videos_total", "clipstream_encoder_failures_total")):
                console.print("  " + line, highlight=False)

        console.print(f"\n[bold]where things are[/]: media {media}, thumbnails and audio {root / 'artefacts'}, "
                      f"vectors {root / 'qdrant'}, logs {logs}; "
                      f"took {time.monotonic() - started:.1f}s")
        if serve:
            console.print(f"running: broker {broker.bootstrap}, gateway {gateway.url} (API key {DEMO_KEY!r}); Ctrl-C stops")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        ok = (len(shown) == len(clips) + len(events) and len(embedded) == len(clips)
              and all(400 <= code < 500 for _, code, _ in refused)
              and all(not after[u]["cold_start"] for u in users))
        return 0 if ok else 1
    finally:
        recommender.stop()
        encoder.stop()
        gateway.stop()
        broker.stop()
        console.print("stopped the recommender, the encoder, the gateway and the broker")
