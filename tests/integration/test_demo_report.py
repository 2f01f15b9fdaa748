"""``clipstream demo --serve`` run once, as a user runs it: it reaches the report, serves until Ctrl-C,
then stops every process. While it serves, the recommender is killed (SIGKILL) and must come back:
restarted by the demo's supervisor, counted in its status file and the report, serving feeds again. The report is opened in headless Chromium (Debian's ``chromium``) and the
rendered page is checked: every video with its concepts and topic (photo clips uploaded with empty
titles among them); a text search per photo clip, with its results; each user's feeds with reasons,
changed after the session; covers per topic; a stylised clip; every Prometheus target up."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest

from devkit.demo import CLIPS, DEMO_KEY, SEARCH_TOP, SERVICES, STOP_WORDS_QUERY, USERS
from devkit.photo_clips import PHOTOS
from devkit.prometheus import INSTALL_HINT, prometheus_binary

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SERVE_DEADLINE_S = 420


@dataclass
class DemoRun:
    workdir: Path
    returncode: int | None
    out: str
    serving: bool
    live_targets: dict[str, str]
    urls: list[str]
    killed: dict = field(default_factory=dict)
    """What the supervisor did about the recommender killed while serving (see _kill_and_wait)."""


def _read(stream, lines: list[str]) -> None:
    lines.extend(stream)  # line by line, as the demo prints


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoRun:
    assert prometheus_binary(), f"the demo's local Prometheus is missing: {INSTALL_HINT}"
    workdir = tmp_path_factory.mktemp("demo") / "demo"
    with open(workdir.parent / "demo.stderr", "w") as err:
        yield from _run_demo(workdir, err)


def _run_demo(workdir: Path, err):
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--workdir", str(workdir), "--serve"],
                            stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "COLUMNS": "200"},
                            # Ctrl-C as at a terminal, even when the test run itself was started in the background
                            # (a shell's `cmd &` ignores SIGINT, and Python then never raises KeyboardInterrupt)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=_read, args=(proc.stdout, lines), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + SERVE_DEADLINE_S
        while time.monotonic() < deadline and proc.poll() is None and not any("Ctrl-C stops" in x for x in lines):
            time.sleep(0.2)
        out = "".join(lines)
        serving = "Ctrl-C stops" in out
        live: dict[str, str] = {}
        running = re.search(r"running: gateway (\S+) .*Prometheus (http://[\d.:]+)", out)
        urls = [running.group(1), running.group(2)] if running else []
        if running:  # while it serves: what Prometheus itself says about its targets
            targets = httpx.get(f"{running.group(2)}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
            live = {t["labels"]["job"]: t["health"] for t in targets}
            killed = _kill_and_wait(workdir / "status.json", running.group(1), "recommender")
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
        reader.join(10)
        yield DemoRun(workdir, proc.poll(), "".join(lines), serving, live, urls, killed if running else {})
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the demo stops its children on SIGTERM too
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _kill_and_wait(status_file: Path, gateway: str, name: str, timeout_s: float = 120) -> dict:
    """SIGKILL one service of the serving demo; wait until its supervisor reports it running again."""
    before = json.loads(status_file.read_text())["children"][name]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    after = before
    while time.monotonic() < deadline:
        after = json.loads(status_file.read_text())["children"][name]
        if after["restarts"] > before["restarts"] and after["state"] == "running":
            break
        time.sleep(0.2)
    feed = httpx.get(f"{gateway}/v1/feed/user-ana", headers={"X-API-Key": DEMO_KEY}, timeout=10)
    return {"before": before, "after": after, "feed_status": feed.status_code,
            "pid_alive": _alive(after["pid"])}


def _alive(pid: int | None) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (OSError, TypeError):
        return False


def test_the_demo_serves_then_stops_everything_on_ctrl_c(demo):
    tail = demo.out[-4000:] + (demo.workdir.parent / "demo.stderr").read_text()[-3000:]
    assert demo.serving, f"the demo never reached --serve:\n{tail}"
    assert demo.returncode == 0, tail
    assert demo.live_targets == {f"clipstream-{s}": "up" for s in SERVICES}, demo.live_targets
    assert "stopped: prometheus, generation, stylization, recommender, encoder, gateway, broker" in demo.out
    assert "where things are" in demo.out and str(demo.workdir / "report" / "index.html") in demo.out
    for url in demo.urls:  # nothing listens any more
        address = urlparse(url)
        with pytest.raises(OSError), socket.create_connection((address.hostname, address.port), timeout=1):
            pass


def test_a_killed_service_is_restarted_by_the_supervisor_and_counted(demo):
    assert demo.killed, "the demo never served, so nothing was killed"
    before, after = demo.killed["before"], demo.killed["after"]
    assert before["state"] == "running" and before["restarts"] == 0
    assert after["state"] == "running" and after["restarts"] == 1, after
    assert after["pid"] != before["pid"] and after["last_exit_code"] == -signal.SIGKILL
    assert demo.killed["feed_status"] == 200  # the gateway reaches the restarted recommender
    assert "supervisor: recommender was killed by SIGKILL; restarting in" in demo.out
    assert "supervisor: recommender is ready again" in demo.out
    assert "recommender was killed by SIGKILL" in (demo.workdir / "logs" / "supervisor.log").read_text()


def test_the_demo_shows_uploads_and_watch_events_travelling(demo):
    out = demo.out
    assert "events read back from the broker's topics" in out
    assert "videos.uploaded" in out and "watch.events" in out
    assert "outside the media root" in out
    assert "videos.uploaded.dlq" in out and "not_a_video" in out
    assert any((demo.workdir / "media").glob("*.mp4"))
    assert re.search(r"uploads and watch events read back from the broker\s*│\s*passed", out), out[-3000:]


# --- the report, as Chromium renders it --------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        def matches(n: Node) -> bool:
            return (tag is None or n.tag == tag) and all(
                value in n.attrs.get(name.rstrip("_"), "").split() if name == "class_" else n.attrs.get(
                    name.replace("_", "-")) == value for name, value in attrs.items())
        return [n for n in self.iter() if matches(n)]

    def all_text(self) -> str:
        return self.text + "".join(c.all_text() for c in self.children)


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(Node("#text", {}, text=data))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: apt-get install -y --no-install-recommends chromium"
    return found


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory) -> tuple[Path, Node]:
    page = demo.workdir / "report" / "index.html"
    assert page.is_file(), f"no report at {page}"
    result = run_chromium(["--dump-dom", page.as_uri()], tmp_path_factory.mktemp("chromium"))
    assert result.returncode == 0 and "<html" in result.stdout, result.stderr[-2000:]
    builder = TreeBuilder()
    builder.feed(result.stdout)
    return page.parent, builder.root


def test_the_report_shows_each_users_feeds_before_and_after_with_reasons(report):
    _, dom = report
    sections = {s.attrs["data-user"]: s for s in dom.find_all("section", class_="user")}
    assert sorted(sections) == sorted(USERS)
    for user, section in sections.items():
        feeds = {f.attrs["data-when"]: f for f in section.find_all("ol", class_="feed")}
        assert set(feeds) == {"before", "after"}, user
        lists = {}
        for when, feed in feeds.items():
            items = feed.find_all("li", class_="item")
            assert items, f"{user}: empty feed {when} the session"
            for item in items:
                reason = item.find_all("span", class_="reason")
                assert reason and reason[0].all_text().strip(), f"{user}: an item without a reason"
            lists[when] = [i.attrs["data-video"] for i in items]
        assert feeds["before"].attrs["data-cold-start"] == "true", user
        assert feeds["after"].attrs["data-cold-start"] == "false", user
        assert lists["after"] != lists["before"], f"{user}'s feed did not change: {lists}"
    checks = {c.attrs["data-check"]: c.attrs["data-ok"] for c in dom.find_all("tr") if "data-check" in c.attrs}
    assert checks and all(ok == "true" for ok in checks.values()), checks


def test_the_report_shows_thumbnails_covers_per_topic_and_a_stylised_clip(report):
    folder, dom = report
    thumbs = [i.attrs["src"] for i in dom.find_all("img", class_="thumb")]
    assert thumbs and all((folder / src).is_file() for src in thumbs)
    covers = dom.find_all("figure", class_="cover")
    topics = {c.attrs["data-topic"] for c in covers}
    assert topics == {"sports", "travel", "food", "music", "nature", "gaming"}, topics
    for cover in covers:
        images = cover.find_all("img")
        assert images and (folder / images[0].attrs["src"]).is_file(), images
    stylized = dom.find_all("div", id="stylized")[0]
    video = stylized.find_all("video")[0]
    assert (folder / video.attrs["src"]).is_file() and video.attrs["src"].endswith(".mp4")
    assert len(stylized.find_all("img")) == 2  # a frame before and after


def test_the_report_shows_creator_insights_with_cover_candidates(report):
    folder, dom = report
    cards = dom.find_all("div", class_="creator")
    assert len(cards) == 3
    for card in cards:
        text = card.all_text()
        assert "reach:" in text and "best time to publish" in text and "suggested tags" in text
        images = [f.find_all("img")[0] for f in card.find_all("figure", class_="candidate")]
        assert images and all((folder / i.attrs["src"]).is_file() for i in images)
    assert "Trending in the last hour" in dom.all_text()


def test_the_report_lists_each_video_with_its_concepts_and_topic(report):
    folder, dom = report
    cards = {c.attrs["data-video"]: c for c in dom.find_all("div", class_="video")}
    photos = {f"photo-{name}" for name in PHOTOS}
    assert photos <= set(cards) and len(cards) == CLIPS + len(PHOTOS), sorted(cards)
    assert all(c.attrs["data-topic"] for c in cards.values()), "a video without a topic"
    for vid in photos:
        card = cards[vid]
        assert card.attrs["data-title"] == "" and card.attrs["data-topic-from"] == "predicted", card.attrs
        concepts = [li for li in card.find_all("li") if "data-concept" in li.attrs]
        assert concepts, f"{vid}: no concepts shown"
        scores = [float(li.attrs["data-score"]) for li in concepts]
        assert all(0 < x <= 1 for x in scores) and scores == sorted(scores, reverse=True), scores
        assert all(li.attrs["data-concept"] in li.all_text() for li in concepts)
        [img] = card.find_all("img", class_="thumb")
        assert (folder / img.attrs["src"]).is_file()


def test_the_report_shows_a_text_search_and_its_results(report):
    folder, dom = report
    blocks = {b.attrs["data-query"]: b for b in dom.find_all("div", class_="query")}
    assert set(blocks) == {p.query for p in PHOTOS.values()} | {STOP_WORDS_QUERY}
    for name, photo in PHOTOS.items():
        block = blocks[photo.query]
        assert block.attrs["data-status"] == "200" and block.attrs["data-expected"] == f"photo-{name}"
        hits = block.find_all("li", class_="hit")
        assert hits, f"{photo.query!r}: no results"
        assert [int(h.attrs["data-rank"]) for h in hits] == list(range(1, len(hits) + 1))
        assert all(h.attrs["data-video"] in h.all_text() and float(h.attrs["data-score"]) <= 1 for h in hits)
        assert all((folder / img.attrs["src"]).is_file() for h in hits for img in h.find_all("img"))
    coffee = blocks[PHOTOS["coffee"].query]
    assert coffee.attrs["data-rank"] and int(coffee.attrs["data-rank"]) <= SEARCH_TOP, coffee.attrs
    assert coffee.find_all("li", class_="expected")[0].attrs["data-video"] == "photo-coffee"
    assert not blocks[STOP_WORDS_QUERY].find_all("li", class_="hit"), "stop words only: nothing to match"


def test_the_report_shows_every_prometheus_target_up(report):
    _, dom = report
    rows = [r for r in dom.find_all("tr") if "data-job" in r.attrs]
    assert {r.attrs["data-job"]: r.attrs["data-health"] for r in rows} == {f"clipstream-{s}": "up" for s in SERVICES}
    series = dom.find_all("table", id="series")[0].all_text()
    assert "watch events applied by the recommender" in series and "freshness p99" in series
    alerts = {r.attrs["data-alert"] for r in dom.find_all("tr") if "data-alert" in r.attrs}
    assert "ClipStreamServiceDown" in alerts


def test_the_report_counts_the_restart(report):
    _, dom = report
    rows = {r.attrs["data-service"]: r.attrs for r in dom.find_all("tr") if "data-service" in r.attrs}
    assert set(rows) == set(SERVICES)
    assert rows["recommender"]["data-restarts"] == "1", rows["recommender"]
    assert all(rows[s]["data-restarts"] == "0" for s in SERVICES if s != "recommender")
    assert "killed by SIGKILL" in dom.find_all("table", id="process-table")[0].all_text()


def test_the_report_renders_as_a_non_blank_page(report, tmp_path):
    folder, _ = report
    shot = folder / "screenshot.png"
    result = run_chromium(["--window-size=1280,2400", f"--screenshot={shot}", (folder / "index.html").as_uri()],
                          tmp_path / "profile")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    import cv2

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1280)
    assert float(image.std()) > 20  # not one colour
    assert len(np.unique(image.reshape(-1, 3)[::37], axis=0)) > 200  # thumbnails, text, colours


def test_every_value_in_the_report_is_escaped():
    from devkit import demo_report as rep

    evil = '<script>alert("x")</script>'
    page = rep.page(rep.Report(
        videos={"v": rep.Video("v", evil, evil, f'thumbs/{evil}.jpg', [(evil, 0.5)], True)},
        users=[rep.UserStory(evil, (evil,), {"cold_start": True, "items": [{"video_id": "v", "reason": evil}]},
                             {"cold_start": False, "items": [{"video_id": evil, "reason": evil, "source": evil}]},
                             [(evil, evil)])],
        similar=[("v", [{"video_id": evil, "score": evil, "topic": evil}])], covers={evil: [evil]},
        stylized=rep.Stylized(evil, evil, evil, evil, evil, evil, evil, error=evil),
        metrics=rep.Metrics(evil, targets=[rep.Target(evil, evil, evil, evil)], series=[(evil, evil, evil)],
                            curves=[(evil, [(0.0, 1.0), (1.0, float("nan")), (2.0, 3.0)])], rules=[(evil, evil, evil)]),
        places=[(evil, evil)], checks=[(evil, False, evil)],
        processes=[rep.Process(evil, evil, None, 1, None, [evil])], supervision=evil,
        searches=[rep.Search(evil, evil, 200, [{"video_id": evil, "score": evil, "topic": evil}]),
                  rep.Search(evil, None, 502, error=evil)]))
    assert "<script" not in page and "&lt;script&gt;" in page
    builder = TreeBuilder()
    builder.feed(page)
    assert builder.root.find_all("section", class_="user") and builder.root.find_all("svg")
    assert builder.root.find_all("div", class_="video") and builder.root.find_all("div", class_="query")
