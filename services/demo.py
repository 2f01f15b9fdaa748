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
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import track
from rich.table import Table

from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_port
from shared.runtime.processes import ServiceProcess
from shared.synthetic import write_clip
from services.tail import tail

DEMO_KEY = "demo-key"
TOPICS = ("sports", "travel", "food")


def make_clips(media: Path, count: int) -> list[dict]:
    rng = random.Random(7)
    clips = []
    for i in track(range(count), description="making sample clips"):
        topic = TOPICS[i % len(TOPICS)]
        name = f"{topic}_{i:02d}.mp4"
        write_clip(media / name, seconds=2.0, hue=(TOPICS.index(topic) + rng.random() * 0.3) / len(TOPICS))
        clips.append({"video_id": f"demo-{i:02d}", "source": name, "title": f"{topic.title()} clip {i}",
                      "tags": [topic, "demo"], "topic": topic, "creator_id": f"creator-{i % 2}"})
    return clips


def watch_session(user: str, videos: list[str], rng: random.Random) -> list[dict]:
    events = []
    for video in rng.sample(videos, k=min(4, len(videos))):
        events.append({"user_id": user, "video_id": video, "action": "impression"})
        action = rng.choice(["complete", "skip", "like", "progress"])
        events.append({"user_id": user, "video_id": video, "action": action,
                       "watch_ms": rng.randint(300, 2000), "duration_ms": 2000})
    return events


def brief(text: str) -> str:
    """The fields a person reads first."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
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
    gateway = ServiceProcess("gateway", free_port(), env=env, log_path=logs / "gateway.log")
    try:
        with console.status("starting the gateway"):
            gateway.start()
        console.print(f"[green]✓[/] gateway on [bold]{gateway.url}[/] (OpenAPI at {gateway.url}/docs)")
        clips = make_clips(media, 6)
        with httpx.Client(base_url=gateway.url, headers={"X-API-Key": DEMO_KEY}, timeout=30) as api:
            for clip in track(clips, description="registering uploads"):
                api.post("/v1/videos", json=clip).raise_for_status()
            rng = random.Random(11)
            videos = [c["video_id"] for c in clips]
            events = [e for u in range(3) for e in watch_session(f"user-{u}", videos, rng)]
            batch = api.post("/v1/events/watch/batch", json={"events": events}).raise_for_status().json()
            console.print(f"[green]✓[/] {len(clips)} uploads and {batch['accepted']} watch events accepted by the gateway")
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

        console.print(f"\n[bold]where things are[/]: media {media}, logs {logs}; "
                      f"took {time.monotonic() - started:.1f}s")
        if serve:
            console.print(f"running: broker {broker.bootstrap}, gateway {gateway.url} (API key {DEMO_KEY!r}); Ctrl-C stops")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        ok = len(shown) == len(clips) + len(events) and all(400 <= code < 500 for _, code, _ in refused)
        return 0 if ok else 1
    finally:
        gateway.stop()
        broker.stop()
        console.print("stopped the gateway and the broker")
