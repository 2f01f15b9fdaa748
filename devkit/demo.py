"""``clipstream demo`` / ``make demo``: the whole platform on the embedded broker, shown end to end.

Starts the embedded broker, every service as a child process (the same ``clipstream run`` entry
point as production) and a local Prometheus scraping them, then acts as a platform backend:
makes a corpus of clips and a few real-content clips of photographs (devkit/photo_clips.py, uploaded
with empty titles), registers them, looks the photo clips up by plain-words text search, has a few
users watch in real time, asks for covers and a stylised clip, sends some bad input, and writes a
browsable report (``<workdir>/report/index.html``) with every video's concepts and topic, the text
search and its results, the feeds before and after, similar videos, the covers, the clip and the
live metrics.
``--serve`` keeps it all running until Ctrl-C. Ctrl-C (or SIGTERM) at any point stops every child.

Once the services are ready, a supervisor (shared/runtime/supervisor.py) restarts any that exits,
with exponential backoff, as a process manager would, and gives a service up after
``RESTART_POLICY.max_restarts`` restarts within its window; restarts are counted in
``<workdir>/status.json``, logged to ``logs/supervisor.log`` and shown in the report.

The exit code is 0 only when every check shown at the end passed (services alive, uploads embedded,
photo clips found by text search, feeds changed, covers and clip produced, every Prometheus target up).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from devkit import demo_report as rep
from devkit.corpus import make_corpus
from devkit.interactions import Item, make_log
from devkit.prometheus import (
    INSTALL_HINT,
    LocalPrometheus,
    PrometheusMissing,
    job_name,
)
from devkit.tail import tail
from shared import topics
from shared.runtime.broker import EmbeddedBroker, free_ports
from shared.runtime.processes import ServiceProcess, terminate
from shared.runtime.supervisor import ChildStatus, RestartPolicy, Supervisor

DEMO_KEY = "demo-key"
SERVICES = ("gateway", "encoder", "recommender", "stylization", "generation")
CLIPS = 72
FEED_K = 6
ROUNDS = 3
ROUND_GAP_S = 1.5
CROWD_USERS, CROWD_ROWS = 40, 400  # the platform's other users, watching before the demo's users arrive
SCRAPE_INTERVAL_S = 2.0
# each user likes one or two topics: finishes and likes those videos, skips the others
USERS: dict[str, tuple[str, ...]] = {
    "user-ana": ("sports", "gaming"),
    "user-ben": ("food",),
    "user-chloe": ("nature", "travel"),
    "user-dev": ("music",),
}
STYLE_OPS = [{"style": "mosaic", "strength": 0.9}]
SEARCH_K = 5
STOP_WORDS_QUERY = "the of and"  # no content word: nothing to match
FOUND_BY_SEARCH = "coffee"  # the photo clip a check expects text search to find, within the top SEARCH_TOP
SEARCH_TOP = 3
RESTART_POLICY = RestartPolicy(max_restarts=5, window_s=120.0, backoff_initial_s=0.5, backoff_max_s=8.0,
                               ready_timeout_s=120.0)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def media(self) -> Path:
        return self.root / "media"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def artefacts(self) -> Path:
        return self.root / "artefacts"

    @property
    def qdrant(self) -> Path:
        return self.root / "qdrant"

    @property
    def recommender(self) -> Path:
        return self.root / "recommender"

    @property
    def stylized(self) -> Path:
        return self.root / "stylized"

    @property
    def generated(self) -> Path:
        return self.root / "generated"

    @property
    def prometheus(self) -> Path:
        return self.root / "prometheus"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    def fresh(self) -> None:
        # the embedded broker keeps nothing between runs (memory storage): state left by an earlier run
        # would hold offsets, vectors and job records of events that no longer exist
        for stale in (self.recommender, self.qdrant, self.stylized, self.generated, self.prometheus, self.report):
            shutil.rmtree(stale, ignore_errors=True)
        for folder in (self.media, self.logs, self.report):
            folder.mkdir(parents=True, exist_ok=True)


class DemoService(ServiceProcess):
    """A service process launched without waiting, so that all of them load their models at once."""

    def launch(self) -> None:
        with open(self.log_path, "ab") as out:  # type: ignore[arg-type]
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "run", self.name, "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env})

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def terminate(self) -> None:
        terminate(self._proc, 10.0)


@dataclass
class Platform:
    """Every child process of the demo; ``stop()`` ends whichever of them were started."""

    paths: Paths
    broker: EmbeddedBroker | None = None
    services: dict[str, DemoService] = field(default_factory=dict)
    prometheus: LocalPrometheus | None = None
    prometheus_missing: str | None = None
    supervisor: Supervisor | None = None
    report: rep.Report | None = None

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, console: Console) -> None:
        logs = self.paths.logs
        with console.status("starting the embedded broker (Tansu)"):
            self.broker = EmbeddedBroker(log_path=logs / "broker.log").start()
        console.print(f"[green]✓[/] embedded broker on [bold]{self.broker.bootstrap}[/], registry topics created")
        ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
        media = str(self.paths.media)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "CLIPSTREAM_GATEWAY_MEDIA_ROOT": media, "CLIPSTREAM_FETCH_MEDIA_ROOT": media,
            "CLIPSTREAM_GATEWAY_API_KEYS": DEMO_KEY,
            "CLIPSTREAM_GATEWAY_RECOMMENDER_URL": f"http://127.0.0.1:{ports['recommender']}",
            "CLIPSTREAM_GATEWAY_STYLIZATION_URL": f"http://127.0.0.1:{ports['stylization']}",
            "CLIPSTREAM_GATEWAY_GENERATION_URL": f"http://127.0.0.1:{ports['generation']}",
            "CLIPSTREAM_QDRANT_DATA_DIR": str(self.paths.qdrant),
            "CLIPSTREAM_ENCODER_ARTEFACTS_DIR": str(self.paths.artefacts),
            "CLIPSTREAM_RECOMMENDER_STATE_DIR": str(self.paths.recommender),
            "CLIPSTREAM_STYLIZATION_OUTPUT_DIR": str(self.paths.stylized),
            "CLIPSTREAM_STYLIZATION_PROGRESS_EVERY_S": "0.2",
            "CLIPSTREAM_GENERATION_OUTPUT_DIR": str(self.paths.generated),
            "CLIPSTREAM_RECOMMENDER_INSIGHTS_REFRESH_S": "0.5",  # reach points follow the demo's users quickly
            "CLIPSTREAM_RECOMMENDER_INSIGHTS_TOP_K": "15",  # about a third of the demo's small catalogue
            "CLIPSTREAM_GATEWAY_INSIGHTS_MIN_USERS": "5",  # the demo's platform is small: about 7 users a topic
        }
        for name in SERVICES:
            self.services[name] = DemoService(name, ports[name], env=env, log_path=logs / f"{name}.log")
            self.services[name].launch()
        with progress_bar(console) as bar:
            task = bar.add_task("starting 5 services (loading models)", total=len(SERVICES))
            for name, service in self.services.items():
                bar.update(task, description=f"starting 5 services: waiting for the {name}")
                service.wait_ready(120)
                bar.advance(task)
            bar.update(task, description="5 services ready")
        for name, service in self.services.items():
            console.print(f"[green]✓[/] {name:<12} on [bold]{service.url}[/]"
                          + (f" (OpenAPI at {service.url}/docs)" if name == "gateway" else ""))

        def on_change(status: ChildStatus, message: str) -> None:
            style = {"running": "green", "gave up": "bold red"}.get(status.state, "yellow")
            console.print(f"[{style}]supervisor:[/] {message}", highlight=False)

        self.supervisor = Supervisor(self.services, RESTART_POLICY, on_change=on_change, status_path=self.paths.status,
                                     log_path=logs / "supervisor.log").start()
        console.print(f"[green]✓[/] supervisor watching 5 services: {RESTART_POLICY.describe()} "
                      f"(status in {self.paths.status})")
        self.prometheus = LocalPrometheus(
            self.paths.prometheus, {name: f"127.0.0.1:{s.port}" for name, s in self.services.items()},
            scrape_interval_s=SCRAPE_INTERVAL_S, log_file=logs / "prometheus.log")
        try:
            with console.status("starting a local Prometheus scraping every service"):
                self.prometheus.start()
            console.print(f"[green]✓[/] Prometheus on [bold]{self.prometheus.url}[/] scraping 5 services "
                          f"every {SCRAPE_INTERVAL_S:g} s (config {self.prometheus.config_path})")
        except PrometheusMissing as exc:
            self.prometheus, self.prometheus_missing = None, str(exc)
            console.print(f"[bold yellow]! no local Prometheus:[/] {exc}; going on without live metrics")

    def dead(self) -> list[str]:
        """What stopped for good: services the supervisor gave up on (or, before it watches, any that
        exited), the broker, Prometheus."""
        if self.supervisor is not None:
            gone = self.supervisor.gave_up()
        else:
            gone = [name for name, s in self.services.items() if not s.alive]
        if self.broker is not None and not self.broker.running:
            gone.append("broker")
        if self.prometheus is not None and not self.prometheus.running:
            gone.append("prometheus")
        return gone

    def processes(self) -> list[rep.Process]:
        if self.supervisor is None:
            return []
        return [rep.Process(s.name, s.state, s.pid, s.restarts, s.last_exit_code, s.history[-4:])
                for s in self.supervisor.snapshot().values()]

    def stop(self, console: Console) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()  # first: nothing is restarted while it all stops
        stopped = []
        if self.prometheus is not None:
            self.prometheus.stop()
            stopped.append("prometheus")
        for name in reversed(list(self.services)):
            self.services[name].stop()
            stopped.append(name)
        if self.broker is not None:
            self.broker.stop()
            stopped.append("broker")
        if stopped:
            console.print(f"stopped: {', '.join(stopped)}")


def progress_bar(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def drop_unreadable(media: Path) -> list[str]:
    """Delete clips an interrupted earlier run left half-written (make_corpus keeps any file that exists)."""
    import av

    dropped = []
    for path in sorted(media.glob("*-7-*.mp4")):
        try:
            with av.open(str(path)) as container:
                ok = bool(container.streams.video) and (container.duration or 0) > 0
        except (av.FFmpegError, OSError):
            ok = False
        if not ok:
            path.unlink(missing_ok=True)
            dropped.append(path.name)
    return dropped


def make_clips(media: Path, count: int) -> list[dict]:
    """Clips from the project's corpus generator, as a platform would register them."""
    drop_unreadable(media)
    rows = make_corpus(media, count, seed=7, seconds=3.0)
    return [{"video_id": f"demo-{i:02d}", "source": r["file"], "title": r["title"], "tags": r["tags"],
             "topic": r["topic"], "creator_id": f"creator-{i % 8}"} for i, r in enumerate(rows)]


def make_photo_uploads(media: Path) -> tuple[dict[str, dict], str | None]:
    """Real-content clips of the photographs in scikit-image's wheel (devkit/photo_clips.py), one per
    photo, registered with an EMPTY title and no tags or topic: all the encoder can go on is what the
    frames show. Name -> upload; and why there are none (scikit-image is a dev dependency)."""
    try:
        from devkit.photo_clips import PHOTOS, make_photo_clip
    except ImportError as exc:
        return {}, f"no photo clips: {exc} (pip install -e '.[dev]' for scikit-image)"
    uploads = {}
    for name in PHOTOS:  # written again each run: a few seconds, and never a half-written file
        path = make_photo_clip(name, media / f"photo-{name}.mp4", seconds=2.0, seed=0)
        uploads[name] = {"video_id": f"photo-{name}", "source": path.name, "title": "", "tags": [],
                         "creator_id": "creator-photos"}
    return uploads, None


def text_searches(api: httpx.Client, photos: dict[str, dict]) -> list[rep.Search]:
    """Each photo clip's plain-words query, and a query of stop words only, sent to GET /v1/search."""
    from devkit.photo_clips import PHOTOS

    asked = [(PHOTOS[name].query, upload["video_id"]) for name, upload in photos.items()]
    out = []
    for query, expected in [*asked, (STOP_WORDS_QUERY, None)]:
        resp = api.get("/v1/search", params={"q": query, "k": SEARCH_K})
        if resp.status_code == 200:
            out.append(rep.Search(query, expected, 200, list(resp.json())))
        else:
            detail = resp.json().get("detail") if resp.headers.get("content-type", "").startswith("application/json") \
                else resp.text[:200]
            out.append(rep.Search(query, expected, resp.status_code, error=str(detail)[:200]))
    return out


def search_checks(searches: list[rep.Search], photos: dict[str, dict], videos: dict[str, rep.Video],
                  missing: str | None) -> list[tuple[str, bool, str]]:
    """What the demo holds text search and the encoder's concepts to."""
    if missing:
        return [("photo clips uploaded with empty titles", False, missing)]
    seen = [videos[u["video_id"]] for u in photos.values() if u["video_id"] in videos]
    described = [v for v in seen if v.concepts and v.topic]
    checks = [("every photo clip (empty title) has concepts and a topic", len(described) == len(photos),
               "; ".join(f"{v.video_id}: {v.topic}, {', '.join(c for c, _ in v.concepts[:3]) or 'no concepts'}"
                         for v in seen) or "none embedded")]
    wanted = photos.get(FOUND_BY_SEARCH, {}).get("video_id")
    search = next((s for s in searches if s.expected == wanted), None)
    if search is not None:
        rank = search.rank
        checks.append((f"search finds the {FOUND_BY_SEARCH} clip by '{search.query}' with an empty title",
                       search.status == 200 and rank is not None and rank <= SEARCH_TOP,
                       f"HTTP {search.status}; {wanted} " + (f"at #{rank} of {len(search.hits)}" if rank
                                                              else f"not among {len(search.hits)} results")
                       + (f": {search.error}" if search.error else "")))
    stop = next((s for s in searches if s.query == STOP_WORDS_QUERY), None)
    if stop is not None:
        checks.append((f"a query of stop words only ('{STOP_WORDS_QUERY}') finds nothing",
                       (stop.status == 200 and not stop.hits) or 400 <= stop.status < 500,
                       f"HTTP {stop.status}, {len(stop.hits)} results"))
    return checks


def watch_round(user: str, tastes: tuple[str, ...], shown: list[str], catalogue: dict[str, str], seen: set[str],
                rng: random.Random, session: str, search: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    """What one user does with the top of their feed (and, with ``search``, a video of a liked topic
    they looked for)."""
    wanted = [v for v, topic in catalogue.items() if topic in tastes and v not in seen and v not in shown]
    picks = shown[:3] + (rng.sample(wanted, k=min(1, len(wanted))) if search else [])
    events, story = [], []
    for video in picks:
        seen.add(video)
        base = {"user_id": user, "video_id": video, "session_id": session}
        events.append({**base, "action": "impression"})
        if catalogue.get(video) in tastes:
            events.append({**base, "action": "complete", "watch_ms": 3000, "duration_ms": 3000})
            if rng.random() < 0.6:
                events.append({**base, "action": "like"})
                story.append((video, "finished, liked"))
            else:
                story.append((video, "finished"))
        else:
            events.append({**base, "action": "skip", "watch_ms": rng.randint(200, 700), "duration_ms": 3000})
            story.append((video, "skipped"))
    return events, story


def crowd_events(clips: dict[str, dict]) -> list[dict]:
    """Other users of the platform (devkit/interactions.py: topic tastes, Zipf popularity, skips and
    dislikes), as the watch events their interaction log stands for."""
    items = [Item(vid, c["title"], tuple(c["tags"]), c["topic"]) for vid, c in clips.items()]
    events = []
    for user, video, _, weight in make_log(items, CROWD_USERS, CROWD_ROWS, seed=3):
        base = {"user_id": f"crowd-{user}", "video_id": video}
        events.append({**base, "action": "impression"})
        if weight >= 1:
            events.append({**base, "action": "complete", "watch_ms": 3000, "duration_ms": 3000})
            if weight >= 2:
                events.append({**base, "action": "like"})
        elif weight <= -2:
            events.append({**base, "action": "dislike", "watch_ms": 500, "duration_ms": 3000})
        else:
            events.append({**base, "action": "skip", "watch_ms": 400, "duration_ms": 3000})
    return events


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of one metric in a /metrics exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.eE+-]+|NaN)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text) if v != "NaN")


def wait_metric(url: str, name: str, at_least: float, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    value = 0.0
    while time.monotonic() < deadline:
        value = metric_sum(httpx.get(f"{url}/metrics", timeout=5).text, name)
        if value >= at_least:
            break
        time.sleep(0.2)
    return value


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
    json_type = {"content-type": "application/json"}
    cases: list[tuple[str, dict]] = [
        ("wrong API key", {"url": "/v1/events/watch", "json": {"user_id": "u", "video_id": "v", "action": "play"},
                           "headers": {"X-API-Key": "nope"}}),
        ("path outside media root", {"url": "/v1/videos", "json": {"source": "../../etc/passwd", "creator_id": "c"}}),
        ("URL to loopback", {"url": "/v1/videos", "json": {"source": "http://127.0.0.1/admin", "creator_id": "c"}}),
        ("URL to link-local metadata", {"url": "/v1/videos",
                                        "json": {"source": "http://169.254.169.254/", "creator_id": "c"}}),
        ("missing field", {"url": "/v1/events/watch", "json": {"user_id": "u", "action": "play"}}),
        ("malformed JSON", {"url": "/v1/events/watch", "content": b"{not json", "headers": json_type}),
        ("10 MB body", {"url": "/v1/events/watch/batch", "content": b"x" * (10 * 1024 * 1024), "headers": json_type}),
        ("style strength out of range", {"url": "/v1/stylizations",
                                         "json": {"uri": "x.mp4", "ops": [{"style": "mosaic", "strength": 3}]}}),
        ("generation too large", {"url": "/v1/generations", "json": {"topic": "sports", "count": 65}}),
    ]
    out = []
    for label, req in cases:
        resp = api.post(**req)
        detail = resp.json().get("detail")
        out.append((label, resp.status_code, detail if isinstance(detail, str) else str(detail)[:100]))
    return out


def frame_at(video: Path, fraction: float, out: Path) -> str | None:
    """Write the frame at ``fraction`` of a video as a JPEG; its file name, or None when unreadable."""
    import av
    import cv2

    try:
        with av.open(str(video)) as container:
            frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    except (av.FFmpegError, OSError):
        return None
    if not frames:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), frames[min(len(frames) - 1, int(len(frames) * fraction))], [cv2.IMWRITE_JPEG_QUALITY, 88])
    return out.name


def copy_into(src: str | Path | None, folder: Path, name: str) -> str | None:
    """Copy a file into the report folder; its path relative to the report, or None when missing."""
    if not src or not Path(src).is_file():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / name)
    return f"{folder.name}/{name}"


def poll_jobs(api: httpx.Client, console: Console, covers: dict[str, str], style_id: str,
              timeout_s: float = 240) -> tuple[dict[str, dict], dict]:
    """Until every generation request and the stylization request is ok or failed."""
    done: dict[str, dict] = {}
    styled: dict = {}
    deadline = time.monotonic() + timeout_s
    with progress_bar(console) as bar:
        gen = bar.add_task(f"generating covers for {len(covers)} topics", total=len(covers))
        sty = bar.add_task("stylizing a clip (mosaic)", total=100)
        while time.monotonic() < deadline and (len(done) < len(covers) or styled.get("status") not in ("ok", "failed")):
            for topic, request_id in covers.items():
                if topic not in done:
                    resp = api.get(f"/v1/generations/{request_id}")
                    if resp.status_code == 200:
                        done[topic] = resp.json()
                        bar.advance(gen)
            if styled.get("status") not in ("ok", "failed"):
                resp = api.get(f"/v1/stylizations/{style_id}")
                if resp.status_code == 200:
                    styled = resp.json()
                    bar.update(sty, completed=100 if styled["status"] != "running" else 100 * styled["progress"])
            time.sleep(0.3)
    return done, styled


def collect_metrics(prom: LocalPrometheus, started_wall: float) -> rep.Metrics:
    health = prom.wait_targets_up(timeout_s=30)
    time.sleep(SCRAPE_INTERVAL_S + 0.5)  # one more scrape, so the last counters are in
    order = {job_name(s): i for i, s in enumerate(SERVICES)}
    targets = sorted((rep.Target(job=t["labels"]["job"], instance=t["labels"].get("instance", ""), health=t["health"],
                                 last_error=t.get("lastError", ""),
                                 scrape_ms=1000 * float(t.get("lastScrapeDuration") or 0))
                      for t in prom.active_targets()), key=lambda t: order.get(t.job, 99))
    del health
    ms = "1000 * histogram_quantile(0.99, sum by (le) ({}))"
    queries = [
        ("targets up", 'sum(up{job=~"clipstream-.+"})'),
        ("gateway HTTP requests", "sum(clipstream_gateway_http_requests_total)"),
        ("watch events published by the gateway", 'sum(clipstream_gateway_published_messages_total{topic="watch.events"})'),
        ("uploads embedded by the encoder", 'sum(clipstream_encoder_videos_total{outcome=~"embedded|duplicate"})'),
        ("uploads the encoder refused", 'sum(clipstream_encoder_videos_total{outcome="failed"}) or vector(0)'),
        ("watch events applied by the recommender", "sum(clipstream_recommender_events_applied_total)"),
        ("freshness p99, event to user state (ms)", ms.format("clipstream_recommender_freshness_seconds_bucket")),
        ("feed latency p99 (ms)", ms.format("clipstream_recommender_feed_duration_seconds_bucket")),
        ("feeds served", "sum(clipstream_recommender_feed_duration_seconds_count)"),
        ("videos in the recommender's catalogue", "sum(clipstream_recommender_catalogue_videos_count)"),
        ("images generated", "sum(clipstream_generation_images_total)"),
        ("frames stylized", "sum(clipstream_stylization_frames_total)"),
    ]
    series = []
    for what, expr in queries:
        try:
            value = prom.scalar(expr)
        except (httpx.HTTPError, RuntimeError) as exc:
            series.append((what, f"error: {exc}", expr))
            continue
        series.append((what, rep.fmt(value), expr))
    curves = []
    now = time.time()
    for what, expr in [
        ("gateway HTTP requests (cumulative)", "sum(clipstream_gateway_http_requests_total)"),
        ("watch events applied (cumulative)", "sum(clipstream_recommender_events_applied_total)"),
        ("uploads handled by the encoder (cumulative)", "sum(clipstream_encoder_videos_total)"),
        ("CPU cores used by the 5 services", 'sum(rate(process_cpu_seconds_total{job=~"clipstream-.+"}[10s]))'),
        ("memory of the 5 services (MiB)", 'sum(process_resident_memory_bytes{job=~"clipstream-.+"}) / 1048576'),
    ]:
        try:
            curves.append((what, prom.query_range(expr, started_wall, now, 1.0)))
        except (httpx.HTTPError, RuntimeError):
            curves.append((what, []))
    rules = [(r["name"], r.get("state", ""),
              ", ".join(f"{k}={v}" for k, v in sorted(r.get("labels", {}).items())) + f"; for {r.get('duration', 0):g} s")
             for r in prom.rules() if r.get("type") == "alerting"]
    return rep.Metrics(prometheus_url=prom.url, targets=targets, series=series, curves=curves, rules=rules)


def places(platform: Platform, paths: Paths) -> list[tuple[str, str]]:
    out = [("report (open in a browser)", str(paths.report / "index.html")),
           ("uploaded clips (media root)", str(paths.media)),
           ("thumbnails and extracted audio (encoder)", str(paths.artefacts)),
           ("vectors (embedded Qdrant shards)", str(paths.qdrant)),
           ("user state (recommender, SQLite)", str(paths.recommender)),
           ("stylised videos", str(paths.stylized)),
           ("generated covers", str(paths.generated)),
           ("logs of every process", str(paths.logs))]
    if platform.prometheus is not None:
        out.insert(-1, ("Prometheus config and series", str(paths.prometheus)))
    if "gateway" in platform.services:
        out.append(("gateway API, while running (key demo-key)", f"{platform.url('gateway')}/docs"))
    if platform.prometheus is not None:
        out.append(("Prometheus UI, while running", f"{platform.prometheus.url}/targets"))
    return out


def print_places(console: Console, rows: list[tuple[str, str]]) -> None:
    table = Table(title="where things are")
    table.add_column("what")
    table.add_column("where", overflow="fold")
    for what, where in rows:
        table.add_row(what, where)
    console.print(table)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_demo(workdir: str = "var/demo", serve: bool = False) -> int:
    console = Console()
    paths = Paths(Path(workdir).resolve())
    paths.fresh()
    started, started_wall = time.monotonic(), time.time()
    platform = Platform(paths)
    try:
        previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops the children too
    except ValueError:  # not the main thread
        previous = None
    code, serving = 1, False
    try:
        platform.start(console)
        code = exercise(platform, paths, console, started, started_wall)
        if serve:
            serving = True
            console.print(f"[bold]running[/]: gateway {platform.url('gateway')} (API key {DEMO_KEY!r})"
                          + (f", Prometheus {platform.prometheus.url}" if platform.prometheus else "")
                          + "; Ctrl-C stops everything")
            console.print(f"a service that exits is restarted ({RESTART_POLICY.describe()}); restarts are counted "
                          f"in {paths.status} and the report")
            seen = platform.supervisor.version if platform.supervisor else 0
            while not platform.dead():
                time.sleep(0.5)
                if platform.supervisor is not None and platform.supervisor.version != seen:
                    seen = platform.supervisor.version
                    refresh_report(platform, paths)
            console.print(f"[red]exited on its own:[/] {', '.join(platform.dead())}; see {paths.logs}")
            code = 1
    except KeyboardInterrupt:
        console.print("\n[yellow]interrupted: stopping every process[/]")
        code = code if serving else 130
    except Exception as exc:  # noqa: BLE001 -- a service that did not start, a request that failed: say so, clean up
        console.print_exception(max_frames=4)
        console.print(f"[bold red]the demo failed:[/] {type(exc).__name__}: {exc}\n  the logs of every process are in "
                      f"{paths.logs}")
        code = 1
    finally:
        try:
            platform.stop(console)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        print_places(console, places(platform, paths))
    return code


def exercise(platform: Platform, paths: Paths, console: Console, started: float, started_wall: float) -> int:
    """Everything the demo does with the running platform; writes the report; returns the exit code."""
    broker = platform.broker
    assert broker is not None
    checks: list[tuple[str, bool, str]] = []
    clips = make_clips(paths.media, CLIPS)
    (paths.media / "not_a_video.mp4").write_text("a text file with a video's name")
    good = {c["video_id"]: c for c in clips}
    photos, no_photos = make_photo_uploads(paths.media)
    if no_photos:
        console.print(f"[bold yellow]! {no_photos}[/]")
    clips.extend(photos.values())
    clips.append({**clips[0], "video_id": "demo-reupload"})  # the same file again: a duplicate
    clips.append({**clips[1], "video_id": "demo-broken", "source": "not_a_video.mp4"})
    catalogue = {vid: c["topic"] for vid, c in good.items()}

    with httpx.Client(base_url=platform.url("gateway"), headers={"X-API-Key": DEMO_KEY}, timeout=30) as api:
        embedded: list[tuple[str, int, int, bytes | None]] = []
        with progress_bar(console) as bar:
            task = bar.add_task("registering uploads with the gateway", total=len(clips))
            for clip in clips:
                api.post("/v1/videos", json=clip).raise_for_status()
                bar.advance(task)
            task = bar.add_task("encoder: decoding, embedding, thumbnails", total=len(clips))

            def on_embedded(*row) -> None:
                embedded.append(row)
                bar.advance(task)

            asyncio.run(tail(broker.bootstrap, [topics.VIDEOS_EMBEDDED.name, topics.VIDEOS_UPLOADED.dlq],
                             from_beginning=True, count=len(clips), timeout_s=90, emit=on_embedded))
        vectors = [json.loads(v) for t, _, _, v in embedded if t == topics.VIDEOS_EMBEDDED.name]
        checks.append(("every upload embedded or dead-lettered", len(embedded) == len(clips),
                       f"{len(vectors)} embedded, {len(embedded) - len(vectors)} dead-lettered of {len(clips)}"))
        with console.status("waiting for the recommender's catalogue"):
            in_catalogue = wait_metric(platform.url("recommender"), "clipstream_recommender_catalogue_videos_count",
                                       len(vectors), 60)
        console.print(f"[green]✓[/] {len(vectors)} videos embedded; {in_catalogue:.0f} in the recommender's catalogue")

        videos = {vid: rep.Video(vid, c["title"], c.get("topic")) for vid, c in
                  {**good, **{u["video_id"]: u for u in photos.values()}}.items()}
        thumbs = paths.report / "thumbs"
        for data in vectors:  # what the encoder published: thumbnail, concepts, its topic when the upload named none
            video = videos.get(data["video_id"])
            if video is None:
                continue
            video.thumb = copy_into(data.get("thumbnail"), thumbs, f"{data['video_id']}.jpg")
            video.concepts = [(c["name"], c["score"]) for c in data.get("concepts") or []]
            if not video.topic and data.get("topic"):
                video.topic, video.topic_predicted = data["topic"], True

        searches = text_searches(api, photos) if photos else []
        checks.extend(search_checks(searches, photos, videos, no_photos))
        print_searches(console, searches, videos)

        # users watch in real time: each round they get their current feed, watch its top and look for
        # a video of a topic they like; the rounds are a second apart
        crowd = crowd_events(good)
        with progress_bar(console) as bar:
            task = bar.add_task(f"{CROWD_USERS} other users watching first ({len(crowd)} events)", total=len(crowd))
            for start in range(0, len(crowd), 200):
                api.post("/v1/events/watch/batch", json={"events": crowd[start:start + 200]}).raise_for_status()
                bar.advance(task, len(crowd[start:start + 200]))
        with console.status("waiting for the recommender to apply them"):
            applied_before = wait_metric(platform.url("recommender"), "clipstream_recommender_events_applied_total",
                                         len(crowd), 60)
        rng = random.Random(11)
        before = {u: api.get(f"/v1/feed/{u}", params={"k": FEED_K}).json() for u in USERS}
        seen: dict[str, set[str]] = {u: set() for u in USERS}
        stories: dict[str, list[tuple[str, str]]] = {u: [] for u in USERS}
        events: list[dict] = []
        with progress_bar(console) as bar:
            task = bar.add_task(f"{len(USERS)} users watching ({ROUNDS} rounds, {ROUND_GAP_S:g} s apart)",
                                total=len(USERS) * ROUNDS)
            for r in range(ROUNDS):
                if r:
                    time.sleep(ROUND_GAP_S)
                for user, tastes in USERS.items():
                    feed = before[user] if r == 0 else api.get(f"/v1/feed/{user}", params={"k": FEED_K}).json()
                    shown = [i["video_id"] for i in feed["items"]]
                    batch, story = watch_round(user, tastes, shown, catalogue, seen[user], rng, f"{user}-demo", r == 0)
                    api.post("/v1/events/watch/batch", json={"events": batch}).raise_for_status()
                    events.extend(batch)
                    stories[user].extend(story)
                    bar.advance(task)
        with console.status("waiting for the recommender to apply every watch event"):
            applied = wait_metric(platform.url("recommender"), "clipstream_recommender_events_applied_total",
                                  applied_before + len(events), 60) - applied_before
        console.print(f"[green]✓[/] {len(events)} watch events accepted by the gateway, {applied:.0f} applied")
        after = {u: api.get(f"/v1/feed/{u}", params={"k": FEED_K}).json() for u in USERS}
        for user, tastes in USERS.items():
            ids_before = [i["video_id"] for i in before[user]["items"]]
            ids_after = [i["video_id"] for i in after[user]["items"]]
            changed = ids_before != ids_after and not after[user]["cold_start"] and bool(ids_after)
            liked_before, liked_after = (rep.liked_share(f, videos, tastes) for f in (before[user], after[user]))
            checks.append((f"{user}'s feed changed after the session", changed,
                           (f"cold start before: {before[user]['cold_start']}, after: {after[user]['cold_start']}; "
                            f"{len(set(ids_after) - set(ids_before))} of {len(ids_after)} items new; in liked topics: "
                            f"{liked_before} before, {liked_after} after")))

        similar = []
        for topic in ("sports", "food", "nature"):
            vid = next(v for v, t in catalogue.items() if t == topic)
            resp = api.get(f"/v1/videos/{vid}/similar", params={"k": 4})
            similar.append((vid, resp.json() if resp.status_code == 200 else []))

        creators, trends = creator_insights(api, catalogue, paths, len(USERS) + CROWD_USERS)
        checks.append(("creator insights for a video of each topic", len(creators) == 3,
                       "; ".join(f"{c.video_id}: reach {c.insights['reach']['users']}, {len(c.covers)} covers"
                                 for c in creators)))

        # covers per topic and one stylised clip, requested together
        known = api.get("/v1/topics").json().get("topics", [])
        cover_ids = {}
        for topic in known:
            body = {"request_id": f"demo-covers-{topic}", "topic": topic, "kind": "cover", "count": 2, "seed": 5,
                    "size": 256}
            cover_ids[topic] = api.post("/v1/generations", json=body).raise_for_status().json()["id"]
        style_video = next(v for v, t in catalogue.items() if t == "travel")
        style_id = api.post("/v1/stylizations", json={"request_id": "demo-stylized", "video_id": style_video,
                                                        "ops": STYLE_OPS}).raise_for_status().json()["id"]
        generated, styled = poll_jobs(api, console, cover_ids, style_id)
        covers = {}
        for topic, result in generated.items():
            # the status answer names artefacts relative to the generation service's output folder
            files = [copy_into(paths.generated / p, paths.report / "covers", f"{topic}-{i + 1}.jpg")
                     for i, p in enumerate(result.get("artefacts", []))]
            if result.get("status") == "ok" and all(files):
                covers[topic] = files
        checks.append(("covers generated for every topic", bool(known) and sorted(covers) == sorted(known),
                       f"{len(covers)} of {len(known)} topics: {', '.join(covers)}"))
        stylized = stylize_story(styled, style_video, paths.media / good[style_video]["source"], paths)
        checks.append(("a clip stylised", stylized.status == "ok" and stylized.video is not None,
                       f"{style_video}: {stylized.status} {stylized.error or ''}".strip()))
        refused = bad_requests(api)
        checks.append(("bad input refused with a reason (4xx)", all(400 <= c < 500 for _, c, _ in refused),
                       ", ".join(f"{label}: {c}" for label, c, _ in refused)))
        gateway_metrics = api.get("/metrics").text

    shown_events: list[tuple[str, int, int, bytes | None]] = []
    names = [topics.VIDEOS_UPLOADED.name, topics.WATCH_EVENTS.name]
    expected = len(clips) + len(crowd) + len(events)
    asyncio.run(tail(broker.bootstrap, names, from_beginning=True, count=expected, timeout_s=5,
                     emit=lambda *row: shown_events.append(row)))
    checks.append(("uploads and watch events read back from the broker",
                   len(shown_events) == expected, f"{len(shown_events)} of {expected}"))
    print_tables(console, shown_events, embedded, before, after, refused, gateway_metrics,
                 httpx.get(f"{platform.url('encoder')}/metrics").text)

    if platform.prometheus is not None:
        with console.status("reading the live metrics from Prometheus"):
            metrics = collect_metrics(platform.prometheus, started_wall)
        up = [t.job for t in metrics.targets if t.health == "up"]
        checks.append(("Prometheus scrapes every service (all targets up)",
                       len(up) == len(SERVICES) and len(metrics.targets) == len(SERVICES),
                       f"{len(up)} of {len(metrics.targets)} up"))
        print_metrics(console, metrics)
    else:
        metrics = rep.Metrics(prometheus_url=None, missing=platform.prometheus_missing or INSTALL_HINT)
    settled = platform.supervisor.wait_settled(RESTART_POLICY.ready_timeout_s) if platform.supervisor else True
    gone = platform.dead()
    everything = "broker, 5 services" + (", prometheus" if platform.prometheus is not None else "")
    restarted = {n: c for n, c in platform.supervisor.restarts().items() if c} if platform.supervisor else {}
    restarts = ("; restarted by the supervisor: " + ", ".join(f"{n} {c}x" for n, c in restarted.items())
                if restarted else "; no restarts")
    checks.append(("every process still running", not gone and settled,
                   (f"gone: {', '.join(gone)}" if gone else everything) + restarts))

    report = rep.Report(
        videos=videos, users=[rep.UserStory(u, USERS[u], before[u], after[u], stories[u]) for u in USERS],
        similar=similar, covers=covers, stylized=stylized, metrics=metrics, places=places(platform, paths),
        checks=checks, generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        took_s=time.monotonic() - started, processes=platform.processes(), supervision=RESTART_POLICY.describe(),
        searches=searches, creators=creators, trends=trends)
    platform.report = report
    path = rep.write_report(paths.report, report)
    print_checks(console, checks)
    if platform.prometheus_missing:
        console.print(f"[bold yellow]! the report has no live metrics:[/] {platform.prometheus_missing}")
    console.print(f"\n[bold]report[/]: {path}  (took {time.monotonic() - started:.0f} s)")
    return 0 if all(ok for _, ok, _ in checks) else 1


def creator_insights(api: httpx.Client, catalogue: dict[str, str], paths: Paths, audience: int
                     ) -> tuple[list[rep.Creator], dict]:
    """``POST /v1/insights`` for the first video of three topics, once the recommender has refreshed the reach
    points of (nearly) every user; the cover candidates copied into the report; the last hour's trends."""
    picks = [next(v for v, t in catalogue.items() if t == topic) for topic in ("sports", "food", "nature")]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = api.post("/v1/insights", json={"video_id": picks[0]})
        if answer.status_code == 200 and (answer.json()["reach"].get("active_users") or 0) >= audience * 0.9:
            break
        time.sleep(0.5)
    out = []
    for vid in picks:
        answer = api.post("/v1/insights", json={"video_id": vid})
        if answer.status_code != 200:
            continue
        data = answer.json()
        covers = [copy_into(paths.artefacts / p, paths.report / "creator", p.rsplit("/", 1)[-1])
                  for p in data.get("covers", [])]
        out.append(rep.Creator(vid, data, [c for c in covers if c]))
    trends = api.get("/v1/trends", params={"window": "1h"})
    return out, trends.json() if trends.status_code == 200 else {}


def refresh_report(platform: Platform, paths: Paths) -> None:
    """Write the report again with the supervisor's current counts (while --serve runs)."""
    if platform.report is not None:
        platform.report.processes = platform.processes()
        rep.write_report(paths.report, platform.report)


def stylize_story(styled: dict, video_id: str, source: Path, paths: Paths) -> rep.Stylized:
    ops = json.dumps(STYLE_OPS)
    if styled.get("status") != "ok":
        return rep.Stylized(video_id, ops, styled.get("status") or "no answer", error=styled.get("error"))
    folder = paths.report / "stylized"
    # relative to the stylization service's output folder (an absolute path survives the join)
    output = paths.stylized / styled["output"] if styled.get("output") else None
    if output is None:
        return rep.Stylized(video_id, ops, "ok", error="the status answer names no output")
    before = frame_at(source, 0.5, folder / f"{video_id}-before.jpg")
    after = frame_at(output, 0.5, folder / f"{video_id}-after.jpg")
    return rep.Stylized(video_id, ops, "ok", before_frame=f"stylized/{before}" if before else None,
                        after_frame=f"stylized/{after}" if after else None,
                        video=copy_into(output, folder, f"{video_id}-stylized.mp4"),
                        source_video=copy_into(source, folder, f"{video_id}-original.mp4"),
                        elapsed_s=styled.get("elapsed_ms", 0) / 1000)


def print_tables(console: Console, shown: list, embedded: list, before: dict, after: dict,
                 refused: list[tuple[str, int, str]], gateway_metrics: str, encoder_metrics: str) -> None:
    table = Table(title=f"{len(shown)} events read back from the broker's topics (the first 6 of each)")
    for col in ("topic", "partition", "offset", "event"):
        table.add_column(col, overflow="fold")
    ordered = sorted(shown, key=lambda r: (r[0], r[1], r[2]))
    for name in sorted({r[0] for r in ordered}):
        for topic, part, offset, text in [r for r in ordered if r[0] == name][:6]:
            table.add_row(topic, str(part), str(offset), brief(text))
    console.print(table)

    done = Table(title=f"encoder output: {len(embedded)} events on videos.embedded and its dead-letter topic (first 8)")
    for col in ("topic", "video", "topic label", "keyframes", "duration s", "duplicate of / reason"):
        done.add_column(col, overflow="fold")
    rows = sorted(embedded, key=lambda r: (not r[0].endswith(".dlq"), json.loads(r[3]).get("duplicate_of") is None, r[3]))
    for topic, _, _, value in rows[:8]:
        data = json.loads(value)
        if topic.endswith(".dlq"):
            done.add_row(f"[red]{topic}[/]", data.get("key") or "", "", "", "", f"{data['reason']}: {data['detail']}")
        else:
            done.add_row(topic, data["video_id"], str(data.get("topic")), str(data["keyframes"]),
                         f"{data['duration_s']:.1f}", data.get("duplicate_of") or "")
    console.print(done)

    for user, tastes in USERS.items():
        feeds = Table(title=f"{user} (likes {', '.join(tastes)}): feed before and after the session (via the gateway)",
                      min_width=100)
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
    console.print("[bold]gateway and encoder metrics[/] (excerpt):")
    for line in gateway_metrics.splitlines():
        if line.startswith(("clipstream_gateway_published_messages_total", "clipstream_gateway_rejected_requests_total")):
            console.print("  " + line, highlight=False)
    for line in encoder_metrics.splitlines():
        if line.startswith(("clipstream_encoder_videos_total", "clipstream_encoder_failures_total")):
            console.print("  " + line, highlight=False)


def print_searches(console: Console, searches: list[rep.Search], videos: dict[str, rep.Video]) -> None:
    shown = Table(title="photo clips uploaded with empty titles: what the encoder saw (videos.embedded)")
    for col in ("video", "topic", "concepts"):
        shown.add_column(col, overflow="fold")
    for video in sorted((v for v in videos.values() if not v.title), key=lambda v: v.video_id):
        shown.add_row(video.video_id, f"{video.topic or ''}{' (predicted)' if video.topic_predicted else ''}",
                      ", ".join(f"{name} {score:.2f}" for name, score in video.concepts))
    console.print(shown)
    table = Table(title=f"text search through the gateway (GET /v1/search?q=…&k={SEARCH_K})")
    for col in ("query", "looking for", "HTTP", "results (best first)"):
        table.add_column(col, overflow="fold")
    for s in searches:
        hits = ", ".join(f"{'[bold]' if h.get('video_id') == s.expected else ''}{h.get('video_id')}"
                         f"{'[/]' if h.get('video_id') == s.expected else ''} {h.get('score')}" for h in s.hits)
        table.add_row(s.query, s.expected or "", str(s.status), hits or (s.error or "none"))
    console.print(table)


def print_metrics(console: Console, metrics: rep.Metrics) -> None:
    table = Table(title=f"Prometheus targets ({metrics.prometheus_url})")
    for col in ("job", "instance", "health", "last error"):
        table.add_column(col, overflow="fold")
    for t in metrics.targets:
        table.add_row(t.job, t.instance, f"[green]{t.health}[/]" if t.health == "up" else f"[red]{t.health}[/]",
                      t.last_error)
    console.print(table)
    series = Table(title="key series, from Prometheus")
    series.add_column("what")
    series.add_column("value", justify="right")
    for what, value, _ in metrics.series:
        series.add_row(what, value)
    console.print(series)


def print_checks(console: Console, checks: list[tuple[str, bool, str]]) -> None:
    table = Table(title="checks")
    for col in ("check", "result", "detail"):
        table.add_column(col, overflow="fold")
    for name, ok, detail in checks:
        table.add_row(name, "[green]passed[/]" if ok else "[bold red]FAILED[/]", detail)
    console.print(table)
