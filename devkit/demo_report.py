"""The demo's report: one self-contained HTML page (plain HTML and CSS, no script, nothing fetched
from the internet) with image files next to it.

Every function here takes data and returns an HTML string; every value shown is escaped. The demo
(devkit/demo.py) gathers the data, copies the images into the report folder and writes the page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path


@dataclass
class Video:
    video_id: str
    title: str = ""
    topic: str | None = None
    thumb: str | None = None
    """Path of the thumbnail relative to the report folder."""
    concepts: list[tuple[str, float]] = field(default_factory=list)
    """What the encoder saw (ImageNet class names and their mean probability, from videos.embedded), best first."""
    topic_predicted: bool = False
    """The topic is the encoder's zero-shot choice (the upload named none)."""


@dataclass
class UserStory:
    user_id: str
    tastes: tuple[str, ...]
    before: dict
    """The feed (GET /v1/feed/{user}) before the session: {"cold_start": bool, "items": [...]}."""
    after: dict
    watched: list[tuple[str, str]] = field(default_factory=list)
    """(video_id, what the user did) in session order."""


@dataclass
class Search:
    """One plain-words query sent to GET /v1/search and what came back."""

    query: str
    expected: str | None = None
    """The video the query is meant to find (a photo clip uploaded with an empty title)."""
    status: int = 200
    hits: list[dict] = field(default_factory=list)
    """The answer's items: {"video_id", "score", "topic", ...}, best first."""
    error: str | None = None

    @property
    def rank(self) -> int | None:
        """1-based place of ``expected`` among the hits; None when it is not there."""
        ids = [h.get("video_id") for h in self.hits]
        return ids.index(self.expected) + 1 if self.expected in ids else None


@dataclass
class Stylized:
    video_id: str
    ops: str
    status: str
    before_frame: str | None = None
    after_frame: str | None = None
    video: str | None = None
    source_video: str | None = None
    elapsed_s: float = 0.0
    error: str | None = None


@dataclass
class Target:
    job: str
    instance: str
    health: str
    last_error: str = ""
    scrape_ms: float | None = None


@dataclass
class Metrics:
    prometheus_url: str | None
    """None when no Prometheus ran (``missing`` says why)."""
    missing: str | None = None
    targets: list[Target] = field(default_factory=list)
    series: list[tuple[str, str, str]] = field(default_factory=list)
    """(what, value as shown, PromQL expression)."""
    curves: list[tuple[str, list[tuple[float, float]]]] = field(default_factory=list)
    """(what, [(unix time, value)]) from range queries over the demo's run."""
    rules: list[tuple[str, str, str]] = field(default_factory=list)
    """(alert name, state: inactive, pending or firing, what distinguishes it: labels, for how long)."""


@dataclass
class Process:
    """A service process as the demo's supervisor sees it."""

    name: str
    state: str
    """running, restarting, starting, gave up or stopped."""
    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    history: list[str] = field(default_factory=list)
    """The supervisor's last messages about it (exits, restarts), oldest first."""


@dataclass
class Creator:
    """One video's creator insights (``POST /v1/insights``), and its cover candidates copied into the report."""
    video_id: str
    insights: dict
    covers: list[str] = field(default_factory=list)


@dataclass
class Report:
    videos: dict[str, Video]
    users: list[UserStory]
    similar: list[tuple[str, list[dict]]] = field(default_factory=list)
    covers: dict[str, list[str]] = field(default_factory=dict)
    stylized: Stylized | None = None
    metrics: Metrics | None = None
    places: list[tuple[str, str]] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    generated_at: str = ""
    took_s: float = 0.0
    processes: list[Process] = field(default_factory=list)
    supervision: str = ""
    """The supervisor's restart policy, in words."""
    searches: list[Search] = field(default_factory=list)
    creators: list[Creator] = field(default_factory=list)
    trends: dict = field(default_factory=dict)


CSS = """
:root { --fg: #1d2330; --muted: #677084; --line: #dfe3ea; --bg: #f6f7fb; --card: #fff; --ok: #1f8a4c; --bad: #c0392b;
        --accent: #3b5bdb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); }
header { background: #1d2330; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c5cbd8; }
nav { padding: 8px 32px; background: #fff; border-bottom: 1px solid var(--line); }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; }
main { padding: 16px 32px 48px; max-width: 1400px; }
section { margin: 0 0 28px; }
h2 { font-size: 18px; margin: 24px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 12px 0 6px; }
.muted { color: var(--muted); }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.user { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
ol.feed { list-style: none; margin: 0; padding: 0; }
ol.feed li { display: flex; gap: 10px; align-items: center; padding: 4px 0; border-bottom: 1px dashed var(--line); }
ol.feed li img, .thumb { width: 96px; height: 54px; object-fit: cover; border-radius: 4px; background: #ddd; flex: none; }
.vid { font-weight: 600; }
.topic { display: inline-block; padding: 0 6px; border-radius: 9px; background: #e7ecff; color: #2b3d91; font-size: 12px; }
.topic.liked { background: #d5f5e3; color: #145a32; }
.reason { display: block; color: var(--muted); font-size: 12px; }
.watched { font-size: 12px; color: var(--muted); margin: 6px 0 10px; }
.grid { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure img { display: block; border-radius: 4px; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
.cover img, .candidate img { width: 128px; height: 128px; }
.creator { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px;
           margin-bottom: 14px; }
.bar { font-size: 12px; display: flex; align-items: center; gap: 6px; margin: 2px 0; }
.bar .label { width: 180px; color: var(--muted); }
.bar .fill { display: inline-block; height: 10px; background: var(--accent); border-radius: 3px; }
.frames img, .frames video { width: 360px; height: auto; }
table { border-collapse: collapse; background: var(--card); }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef0f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; }
.spark { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.spark svg { display: block; }
.similar { display: flex; gap: 10px; align-items: center; background: var(--card); border: 1px solid var(--line);
           border-radius: 8px; padding: 8px; margin-bottom: 8px; }
.similar .arrow { color: var(--muted); font-size: 20px; }
.similar .hit { text-align: center; font-size: 12px; }
.videos { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 10px; }
.video { display: flex; gap: 10px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.video .meta { min-width: 0; font-size: 12px; }
.video .title { display: block; color: var(--muted); }
ul.concepts { list-style: none; margin: 4px 0 0; padding: 0; }
ul.concepts li { display: inline-block; margin: 0 4px 2px 0; padding: 0 6px; border-radius: 9px; background: #f1f3f7;
                 font-size: 11px; }
.query { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin-bottom: 10px; }
.query h3 { margin: 0 0 6px; }
ol.hits { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 10px; }
ol.hits li { text-align: center; font-size: 12px; padding: 4px; border-radius: 6px; }
ol.hits li.expected { outline: 2px solid var(--ok); }
"""


def esc(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def topic_badge(topic: str | None, liked: bool = False) -> str:
    if not topic:
        return ""
    return f'<span class="topic{" liked" if liked else ""}">{esc(topic)}</span>'


def thumb(video: Video | None, video_id: str) -> str:
    if video is None or not video.thumb:
        return f'<span class="thumb" title="{esc(video_id)}"></span>'
    return f'<img class="thumb" src="{esc(video.thumb)}" alt="{esc(video_id)}" loading="lazy">'


def feed_list(feed: dict, videos: dict[str, Video], when: str, tastes: Sequence[str] = ()) -> str:
    """One feed as an ordered list; each item with its thumbnail, title, topic, score and reason."""
    rows = []
    for item in feed.get("items", []):
        vid = item.get("video_id", "")
        video = videos.get(vid)
        topic = item.get("topic") or (video.topic if video else None)
        title = video.title if video else ""
        rows.append(
            f'<li class="item" data-video="{esc(vid)}">{thumb(video, vid)}<div>'
            f'<span class="vid">{esc(vid)}</span> {topic_badge(topic, topic in tastes)} '
            f'<span class="muted">{esc(title)}</span>'
            f'<span class="reason">{esc(item.get("reason", ""))} '
            f'<span class="muted">({esc(item.get("source", ""))}, score {esc(item.get("score", ""))})</span></span>'
            f"</div></li>")
    state = "cold start" if feed.get("cold_start") else "personalised"
    liked = liked_share(feed, videos, tastes)
    return (f'<div class="feed-block"><h3>{esc(when)} the session <span class="muted">({esc(state)}; '
            f'{liked} of {len(feed.get("items", []))} in liked topics)</span></h3>'
            f'<ol class="feed" data-when="{esc(when)}" data-cold-start="{str(bool(feed.get("cold_start"))).lower()}">'
            f'{"".join(rows) or "<li>(empty feed)</li>"}</ol></div>')


def liked_share(feed: dict, videos: dict[str, Video], tastes: Sequence[str]) -> int:
    """How many of a feed's items are of a topic the user likes."""
    count = 0
    for item in feed.get("items", []):
        video = videos.get(item.get("video_id", ""))
        count += (item.get("topic") or (video.topic if video else None)) in tastes
    return count


def user_section(story: UserStory, videos: dict[str, Video]) -> str:
    watched = ", ".join(f"{esc(v)} ({esc(a)})" for v, a in story.watched)
    return (f'<section class="user" id="{esc(story.user_id)}" data-user="{esc(story.user_id)}">'
            f'<h3>{esc(story.user_id)} <span class="muted">likes</span> '
            f'{" ".join(topic_badge(t, True) for t in story.tastes)}</h3>'
            f'<div class="watched">session: {watched or "nothing"}</div>'
            f'<div class="pair">{feed_list(story.before, videos, "before", story.tastes)}'
            f'{feed_list(story.after, videos, "after", story.tastes)}</div></section>')


def similar_section(similar: Iterable[tuple[str, list[dict]]], videos: dict[str, Video]) -> str:
    rows = []
    for vid, hits in similar:
        video = videos.get(vid)
        cells = "".join(
            f'<div class="hit" data-video="{esc(h.get("video_id"))}">{thumb(videos.get(h.get("video_id", "")), h.get("video_id", ""))}'
            f'<br>{esc(h.get("video_id"))} {topic_badge(h.get("topic"))}<br>'
            f'<span class="muted">{esc(h.get("score"))}</span></div>' for h in hits)
        rows.append(f'<div class="similar" data-video="{esc(vid)}"><div class="hit">{thumb(video, vid)}<br>'
                    f'<b>{esc(vid)}</b> {topic_badge(video.topic if video else None)}</div>'
                    f'<span class="arrow">→</span>{cells or "<span class=muted>(none)</span>"}</div>')
    return "".join(rows) or '<p class="muted">no similar lists</p>'


def concepts_list(concepts: Sequence[tuple[str, float]]) -> str:
    if not concepts:
        return '<span class="muted">no concept above the threshold</span>'
    items = "".join(f'<li data-concept="{esc(name)}" data-score="{esc(score)}">{esc(name)} '
                    f'<span class="muted">{esc(fmt_score(score))}</span></li>' for name, score in concepts)
    return f'<ul class="concepts">{items}</ul>'


def fmt_score(score: object) -> str:
    try:
        return f"{float(score):.2f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(score)


def videos_section(videos: dict[str, Video]) -> str:
    """Every video with its thumbnail, title, topic (the uploader's or the encoder's choice) and concepts;
    videos uploaded without a title first."""
    if not videos:
        return '<p class="muted">no videos</p>'
    order = sorted(videos.values(), key=lambda v: (bool(v.title), v.video_id))
    cards = []
    for v in order:
        how = "predicted" if v.topic_predicted else "uploader"
        badge = topic_badge(v.topic) + (' <span class="muted">(predicted)</span>' if v.topic_predicted and v.topic else "")
        cards.append(
            f'<div class="video" data-video="{esc(v.video_id)}" data-topic="{esc(v.topic or "")}" '
            f'data-topic-from="{how}" data-title="{esc(v.title)}">{thumb(v, v.video_id)}<div class="meta">'
            f'<span class="vid">{esc(v.video_id)}</span> {badge}'
            f'<span class="title">{esc(v.title) if v.title else "<i>(no title)</i>"}</span>'
            f'{concepts_list(v.concepts)}</div></div>')
    untitled = sum(not v.title for v in videos.values())
    return (f'<p class="muted">{len(videos)} videos as the encoder published them on videos.embedded: the topic '
            "(the uploader's, or the encoder's zero-shot choice when the upload named none) and the concepts "
            "(ImageNet classes the pretrained backbone saw, mean probability over the keyframes). "
            f"{untitled} were uploaded with an empty title: what they show is all a search can go on.</p>"
            f'<div class="videos">{"".join(cards)}</div>')


def search_section(searches: Sequence[Search], videos: dict[str, Video]) -> str:
    if not searches:
        return '<p class="muted">no text search ran</p>'
    blocks = []
    for s in searches:
        rank = s.rank
        if s.expected is None:
            found = ""
        elif rank is None:
            found = f' <span class="bad">{esc(s.expected)} not among the results</span>'
        else:
            found = f' <span class="ok">{esc(s.expected)} at #{rank}</span>'
        hits = "".join(
            f'<li class="hit{" expected" if h.get("video_id") == s.expected else ""}" data-video="{esc(h.get("video_id"))}" '
            f'data-rank="{i + 1}" data-score="{esc(h.get("score"))}">{thumb(videos.get(h.get("video_id", "")), h.get("video_id", ""))}'
            f'<br>#{i + 1} {esc(h.get("video_id"))} {topic_badge(h.get("topic"))}<br>'
            f'<span class="muted">score {esc(h.get("score"))}</span></li>' for i, h in enumerate(s.hits))
        if s.status != 200:
            body = f'<p class="bad">HTTP {esc(s.status)}: {esc(s.error)}</p>'
        else:
            body = f'<ol class="hits">{hits}</ol>' if hits else '<p class="muted">no results</p>'
        blocks.append(f'<div class="query" data-query="{esc(s.query)}" data-expected="{esc(s.expected or "")}" '
                      f'data-status="{esc(s.status)}" data-rank="{esc(rank or "")}"><h3>“{esc(s.query)}”{found}</h3>'
                      f'{body}</div>')
    intro = ("GET /v1/search?q=… through the gateway: each query is embedded by the text model and matched against "
             "the videos' search vectors (their concepts and their own words). Each query names what one photo clip "
             "shows; that clip was uploaded with an empty title.")
    return f'<p class="muted">{esc(intro)}</p>' + "".join(blocks)


def covers_section(covers: dict[str, list[str]]) -> str:
    if not covers:
        return '<p class="muted">no covers were generated</p>'
    figures = []
    for topic, files in covers.items():
        for i, path in enumerate(files):
            figures.append(f'<figure class="cover" data-topic="{esc(topic)}"><img src="{esc(path)}" '
                           f'alt="{esc(topic)} cover {i + 1}"><figcaption>{esc(topic)} #{i + 1}</figcaption></figure>')
    return f'<div class="grid">{"".join(figures)}</div>'


def bars(counts: dict[str, int], unit: str) -> str:
    top = max(counts.values(), default=0) or 1
    return "".join(f'<div class="bar"><span class="label">{esc(k)}</span><span class="fill" style="width:'
                   f'{max(2, round(160 * v / top))}px"></span> {v} {esc(unit)}</div>' for k, v in counts.items())


def creator_card(c: Creator, videos: dict[str, Video]) -> str:
    ins = c.insights
    reach = ins.get("reach", {})
    figure = "withheld" if reach.get("users") is None else f"{reach['users']} users" + (
        f" ({reach['events']} events between them)" if reach.get("events") is not None else "")
    hours = ", ".join(f"{h:02d}:00" for h in ins.get("best_time", {}).get("hours_utc", [])) or "-"
    tags = "".join(f'<li><b>{esc(s["text"])}</b> <span class="muted">from {esc(", ".join(s["evidence"][:3]))}</span>'
                   f'</li>' for s in ins.get("tags", [])[:5]) or '<li class="muted">no evidence yet</li>'
    covers = "".join(f'<figure class="candidate"><img src="{esc(p)}" alt="cover candidate {i + 1}">'
                     f'<figcaption>#{i + 1}</figcaption></figure>' for i, p in enumerate(c.covers))
    return (f'<div class="card creator" data-video="{esc(c.video_id)}"><h3>{thumb(videos.get(c.video_id), c.video_id)} '
            f'{esc(c.video_id)} {topic_badge(ins.get("topic"))}</h3><p><b>reach: {esc(figure)}</b> · '
            f'{esc(reach.get("reason", ""))}</p>{bars(reach.get("by_topic", {}), "users")}'
            f'<p>best time to publish (UTC): <b>{esc(hours)}</b></p><p>suggested tags:</p><ul>{tags}</ul>'
            f'<div class="grid">{covers or "<p class=muted>no cover candidates</p>"}</div></div>')


def creators_section(creators: Sequence[Creator], trends: dict, videos: dict[str, Video]) -> str:
    cards = "".join(creator_card(c, videos) for c in creators) or '<p class="muted">no insights were asked</p>'
    rising = trends.get("rising", [])
    chart = bars({f'{t["kind"]} {t["name"]} (z {t["z"]:g})': t["views"] for t in rising}, "views") if rising else \
        f'<p class="muted">nothing rising in the last hour ({esc(trends.get("rule", "no answer"))})</p>'
    return cards + f"<h3>Trending in the last hour</h3>{chart}"


def stylized_section(st: Stylized | None) -> str:
    if st is None:
        return '<p class="muted">no stylization ran</p>'
    head = (f'<p>video <b>{esc(st.video_id)}</b>, operations <code>{esc(st.ops)}</code>: '
            f'<span class="{"ok" if st.status == "ok" else "bad"}">{esc(st.status)}</span>'
            f'{f" in {st.elapsed_s:.1f} s" if st.elapsed_s else ""}'
            f'{f" — {esc(st.error)}" if st.error else ""}</p>')
    parts = []
    if st.before_frame:
        parts.append(f'<figure><img src="{esc(st.before_frame)}" alt="frame before"><figcaption>a frame before'
                     '</figcaption></figure>')
    if st.after_frame:
        parts.append(f'<figure><img src="{esc(st.after_frame)}" alt="frame after"><figcaption>the same frame after'
                     '</figcaption></figure>')
    if st.video:
        original = (f' (original: <a href="{esc(st.source_video)}">{esc(Path(st.source_video).name)}</a>)'
                    if st.source_video else "")
        poster = f' poster="{esc(st.after_frame)}"' if st.after_frame else ""
        parts.append(f'<figure><video src="{esc(st.video)}"{poster} controls muted loop preload="none"></video>'
                     f'<figcaption>the stylised clip: <a href="{esc(st.video)}">{esc(Path(st.video).name)}</a>'
                     f'{original}</figcaption></figure>')
    return head + f'<div class="grid frames" id="stylized">{"".join(parts)}</div>'


def sparkline(points: Sequence[tuple[float, float]], width: int = 320, height: int = 64,
              window: tuple[float, float] | None = None) -> str:
    """An inline SVG line of (time, value) points, scaled to the box (the time axis to ``window`` when
    given, so that several lines share it); NaNs are left out."""
    pts = [(t, v) for t, v in points if not (math.isnan(v) or math.isinf(v))]
    if len(pts) < 2:
        return f'<svg width="{width}" height="{height}" role="img"><text x="4" y="{height // 2}" ' \
               f'fill="#677084" font-size="12">not enough samples</text></svg>'
    t0, t1 = window or (pts[0][0], pts[-1][0])
    lo, hi = min(0.0, *(v for _, v in pts)), max(v for _, v in pts)  # from zero: every series here is >= 0
    span_t, span_v = (t1 - t0) or 1.0, (hi - lo) or 1.0
    pad = 4
    xs = [pad + (t - t0) / span_t * (width - 2 * pad) for t, _ in pts]
    coords = " ".join(f"{x:.1f},{height - pad - (v - lo) / span_v * (height - 2 * pad):.1f}" for x, (_, v) in zip(xs, pts))
    area = f"{xs[0]:.1f},{height - pad} {coords} {xs[-1]:.1f},{height - pad}"
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            f'<polygon points="{area}" fill="#e7ecff"/>'
            f'<polyline points="{coords}" fill="none" stroke="#3b5bdb" stroke-width="2"/>'
            f'<text x="{width - pad}" y="12" text-anchor="end" font-size="11" fill="#677084">max {esc(fmt(hi))}</text>'
            f'</svg>')


def fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def metrics_section(m: Metrics | None) -> str:
    if m is None or m.prometheus_url is None:
        why = m.missing if m else "no metrics were collected"
        return f'<p class="bad" id="metrics-missing">no local Prometheus: {esc(why)}</p>'
    up = sum(t.health == "up" for t in m.targets)
    rows = "".join(
        f'<tr data-job="{esc(t.job)}" data-health="{esc(t.health)}"><td>{esc(t.job)}</td><td>{esc(t.instance)}</td>'
        f'<td class="{"ok" if t.health == "up" else "bad"}">{esc(t.health)}</td>'
        f'<td class="num">{esc(fmt(t.scrape_ms))}</td><td>{esc(t.last_error)}</td></tr>' for t in m.targets)
    targets = (f'<h3>scrape targets: {up} of {len(m.targets)} up</h3>'
               f'<table id="targets"><tr><th>job</th><th>instance</th><th>health</th><th>last scrape ms</th>'
               f'<th>last error</th></tr>{rows}</table>')
    series = "".join(f'<tr><td>{esc(what)}</td><td class="num">{esc(value)}</td><td><code>{esc(expr)}</code></td></tr>'
                     for what, value, expr in m.series)
    key = (f'<h3>key series</h3><table id="series"><tr><th>what</th><th>value</th><th>PromQL</th></tr>{series}</table>'
           if series else "")
    times = [t for _, points in m.curves for t, _ in points]
    window = (min(times), max(times)) if len(times) > 1 and max(times) > min(times) else None
    curves = "".join(f'<figure class="spark"><figcaption>{esc(what)}</figcaption>{sparkline(points, window=window)}'
                     '</figure>' for what, points in m.curves)
    span = f" ({fmt(window[1] - window[0])} s from Prometheus' first scrape to the end)" if window else ""
    curves_html = f'<h3>over the demo{esc(span)}</h3><div class="grid">{curves}</div>' if curves else ""
    rules = "".join(f'<tr data-alert="{esc(name)}"><td>{esc(name)}</td><td>{esc(detail)}</td>'
                    f'<td class="{"bad" if state == "firing" else ""}">{esc(state)}</td></tr>'
                    for name, state, detail in m.rules)
    rules_html = (f'<h3>alert rules loaded (deploy/prometheus/rules)</h3><table id="alerts"><tr><th>alert</th>'
                  f'<th>labels, for</th><th>state</th></tr>{rules}</table>'
                  if rules else '<p class="muted">no alert rules loaded</p>')
    return (f'<p>from the local Prometheus at <a href="{esc(m.prometheus_url)}">{esc(m.prometheus_url)}</a> '
            f'(live while the demo runs)</p>{targets}{key}{curves_html}{rules_html}')


def checks_section(checks: Iterable[tuple[str, bool, str]]) -> str:
    rows = "".join(f'<tr data-check="{esc(name)}" data-ok="{str(ok).lower()}"><td>{esc(name)}</td>'
                   f'<td class="{"ok" if ok else "bad"}">{"passed" if ok else "FAILED"}</td><td>{esc(detail)}</td></tr>'
                   for name, ok, detail in checks)
    return f'<table id="checks"><tr><th>check</th><th>result</th><th>detail</th></tr>{rows}</table>'


def processes_section(processes: Sequence[Process], supervision: str) -> str:
    if not processes:
        return '<p class="muted">no supervisor ran</p>'
    restarted = sum(p.restarts for p in processes)
    rows = "".join(
        f'<tr data-service="{esc(p.name)}" data-state="{esc(p.state)}" data-restarts="{p.restarts}">'
        f'<td>{esc(p.name)}</td><td class="num">{esc(p.pid)}</td>'
        f'<td class="{"ok" if p.state == "running" else "bad"}">{esc(p.state)}</td>'
        f'<td class="num">{p.restarts}</td><td class="num">{esc("" if p.last_exit_code is None else p.last_exit_code)}</td>'
        f'<td>{"<br>".join(esc(line) for line in p.history) or "<span class=muted>nothing happened</span>"}</td></tr>'
        for p in processes)
    return (f'<p>Each service runs as a child process of the demo, watched by a supervisor that restarts one that '
            f'exits: {esc(supervision)}. {restarted} restart{"" if restarted == 1 else "s"} so far '
            '(this page is written again at each change while <code>--serve</code> runs).</p>'
            f'<table id="process-table"><tr><th>service</th><th>pid</th><th>state</th><th>restarts</th>'
            f'<th>last exit code</th><th>what happened</th></tr>{rows}</table>')


def places_section(places: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{esc(what)}</td><td><code>{esc(where)}</code></td></tr>" for what, where in places)
    return f'<table id="places"><tr><th>what</th><th>where</th></tr>{rows}</table>'


def page(report: Report) -> str:
    passed = all(ok for _, ok, _ in report.checks)
    users = "".join(user_section(u, report.videos) for u in report.users)
    sections = [
        ("checks", "Checks", checks_section(report.checks)),
        ("videos", "Videos: concepts and topics", videos_section(report.videos)),
        ("search", "Text search", search_section(report.searches, report.videos)),
        ("feeds", "Feeds before and after each user's session",
         '<p class="muted">Before: the user has no history, so the feed is the cold-start mix (what the platform\'s '
         "other users made trending, and new uploads). The users then watch in real time through the gateway's "
         "batch endpoint, a few rounds a second apart, each time the top of their current feed (and, at first, one "
         "video they looked for): they finish and like videos of the topics they like and skip the others. After: "
         "the recommender's personalised feed, each item with the reason it is there.</p>" + users),
        ("similar", "Similar videos", similar_section(report.similar, report.videos)),
        ("covers", "Generated covers per topic",
         '<p class="muted">POST /v1/generations, kind cover, one request per topic; the generation service\'s '
         "conditional GAN.</p>" + covers_section(report.covers)),
        ("stylization", "A stylised clip", stylized_section(report.stylized)),
        ("creators", "Creator insights",
         '<p class="muted">What a creator sees for a video before publishing it (<code>POST /v1/insights</code>): '
         "how many of the platform's recently active users would have it among their top candidates, by their "
         "favourite topic; when they watch; tags from similar videos that did well; the encoder's cover "
         "candidates (sharp, well exposed, colourful keyframes). Figures from fewer users than the privacy floor are "
         "withheld (5 in this small demo, 10 by default). Asked here with the platform's key, which reads exact counts; a "
         "creator's own key reads them rounded to multiples of 10."
         "</p>" + creators_section(report.creators, report.trends, report.videos)),
        ("metrics", "Live metrics", metrics_section(report.metrics)),
        ("processes", "Processes and restarts", processes_section(report.processes, report.supervision)),
        ("places", "Where things are", places_section(report.places)),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2>{html}</section>' for sid, title, html in sections)
    status = '<span class="ok">all checks passed</span>' if passed else '<span class="bad">some checks failed</span>'
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>ClipStream demo report</title><style>{CSS}</style></head><body>'
            f'<header><h1>ClipStream demo</h1><p>{esc(report.generated_at)} · {len(report.videos)} videos · '
            f'{len(report.users)} users · took {report.took_s:.0f} s · {status}</p></header>'
            f'<nav>{nav}</nav><main>{body}</main></body></html>\n')


def write_report(folder: Path, report: Report) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    path.write_text(page(report), encoding="utf-8")
    return path
