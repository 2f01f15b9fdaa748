"""The demo's videos and text-search sections, and the demo's photo uploads, searches and checks, without
running the platform (the whole demo runs once, in tests/integration/test_demo_report.py)."""

from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

from devkit import demo
from devkit import demo_report as rep


class Tags(HTMLParser):
    """Start tags with their attributes, in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def having(self, tag: str, attr: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and attr in a]


VIDEOS = {
    "demo-00": rep.Video("demo-00", "Tiny dribble", "sports", "thumbs/demo-00.jpg", [("wardrobe", 0.1377)]),
    "photo-coffee": rep.Video("photo-coffee", "", "food", "thumbs/photo-coffee.jpg",
                              [("espresso", 0.7164), ("consomme", 0.1156)], topic_predicted=True),
    "photo-black": rep.Video("photo-black", "", None, None, []),
}


def test_search_rank_is_the_expected_videos_place():
    hits = [{"video_id": "a"}, {"video_id": "b"}]
    assert rep.Search("q", "b", hits=hits).rank == 2
    assert rep.Search("q", "c", hits=hits).rank is None
    assert rep.Search("q", None, hits=hits).rank is None


def test_videos_section_lists_each_video_with_concepts_scores_and_topic():
    html = rep.videos_section(VIDEOS)
    tags = Tags(html)
    cards = tags.having("div", "data-video")
    assert [c["data-video"] for c in cards] == ["photo-black", "photo-coffee", "demo-00"], "untitled first"
    coffee = next(c for c in cards if c["data-video"] == "photo-coffee")
    assert coffee["data-topic"] == "food" and coffee["data-topic-from"] == "predicted" and coffee["data-title"] == ""
    assert next(c for c in cards if c["data-video"] == "demo-00")["data-topic-from"] == "uploader"
    concepts = [(li["data-concept"], li["data-score"]) for li in tags.having("li", "data-concept")]
    assert concepts == [("espresso", "0.7164"), ("consomme", "0.1156"), ("wardrobe", "0.1377")]
    assert "espresso <span class=\"muted\">0.72</span>" in html and "(predicted)" in html and "(no title)" in html
    assert "no concept above the threshold" in html  # the black clip
    assert [i["src"] for i in tags.having("img", "src")] == ["thumbs/photo-coffee.jpg", "thumbs/demo-00.jpg"]
    assert "no videos" in rep.videos_section({})


def test_search_section_shows_each_query_its_results_and_where_the_expected_clip_came():
    searches = [
        rep.Search("a cup of coffee", "photo-coffee", 200,
                   [{"video_id": "photo-coffee", "score": 0.385, "topic": "food"},
                    {"video_id": "demo-00", "score": 0.26, "topic": "sports"}]),
        rep.Search("an astronaut", "photo-astronaut", 200, [{"video_id": "demo-00", "score": 0.27}]),
        rep.Search("the of and", None, 200, []),
        rep.Search("a cat", "photo-chelsea", 502, error="recommender unreachable"),
    ]
    html = rep.search_section(searches, VIDEOS)
    tags = Tags(html)
    blocks = {b["data-query"]: b for b in tags.having("div", "data-query")}
    assert list(blocks) == ["a cup of coffee", "an astronaut", "the of and", "a cat"]
    assert blocks["a cup of coffee"]["data-rank"] == "1" and blocks["an astronaut"]["data-rank"] == ""
    assert blocks["a cat"]["data-status"] == "502" and "recommender unreachable" in html
    hits = tags.having("li", "data-video")
    assert [(h["data-video"], h["data-rank"], h["data-score"]) for h in hits] == [
        ("photo-coffee", "1", "0.385"), ("demo-00", "2", "0.26"), ("demo-00", "1", "0.27")]
    assert "expected" in hits[0]["class"].split() and "expected" not in hits[1]["class"].split()
    assert "photo-coffee at #1" in html and "photo-astronaut not among the results" in html
    assert "no results" in html
    assert tags.having("img", "src")[0]["src"] == "thumbs/photo-coffee.jpg"
    assert "no text search ran" in rep.search_section([], VIDEOS)


def test_the_page_has_the_videos_and_search_sections_in_its_navigation():
    page = rep.page(rep.Report(videos=VIDEOS, users=[], searches=[rep.Search("a cup of coffee", "photo-coffee")]))
    tags = Tags(page)
    assert {a["href"] for a in tags.having("a", "href")} >= {"#videos", "#search"}
    assert {s["id"] for s in tags.having("section", "id")} >= {"videos", "search"}


def test_new_values_are_escaped():
    evil = '<script>alert("x")</script>'
    videos = {evil: rep.Video(evil, evil, evil, evil, [(evil, evil)], topic_predicted=True)}
    page = rep.page(rep.Report(videos=videos, users=[], searches=[
        rep.Search(evil, evil, 200, [{"video_id": evil, "score": evil, "topic": evil}]),
        rep.Search(evil, evil, 500, error=evil)]))
    assert "<script" not in page and "&lt;script&gt;" in page


# --- the demo's side: photo uploads, searches, checks --------------------------------------------------

def test_photo_uploads_have_empty_titles_and_files_in_the_media_root(tmp_path):
    pytest.importorskip("skimage")
    from devkit.photo_clips import PHOTOS

    uploads, missing = demo.make_photo_uploads(tmp_path)
    assert missing is None and list(uploads) == list(PHOTOS)
    for name, upload in uploads.items():
        assert upload["video_id"] == f"photo-{name}" and upload["title"] == "" and upload["tags"] == []
        assert "topic" not in upload, "the encoder chooses the topic"
        assert (tmp_path / upload["source"]).stat().st_size > 0


def _photos(*names: str) -> dict[str, dict]:
    return {n: {"video_id": f"photo-{n}", "source": f"photo-{n}.mp4", "title": ""} for n in names}


def test_text_searches_send_each_photo_query_and_a_stop_word_query(monkeypatch):
    pytest.importorskip("skimage")
    from devkit.photo_clips import PHOTOS

    asked = []

    def answer(request: httpx.Request) -> httpx.Response:
        q = request.url.params["q"]
        asked.append((request.url.path, q, request.url.params["k"]))
        if q == "a cat":
            return httpx.Response(502, json={"detail": "recommender answered HTTP 500"})
        if q == demo.STOP_WORDS_QUERY:
            return httpx.Response(200, json=[])
        return httpx.Response(200, json=[{"video_id": "photo-coffee", "score": 0.4, "topic": "food"}])

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://gateway") as api:
        searches = demo.text_searches(api, _photos("coffee", "chelsea"))
    assert asked == [("/v1/search", PHOTOS["coffee"].query, str(demo.SEARCH_K)),
                     ("/v1/search", PHOTOS["chelsea"].query, str(demo.SEARCH_K)),
                     ("/v1/search", demo.STOP_WORDS_QUERY, str(demo.SEARCH_K))]
    coffee, cat, stop = searches
    assert coffee.expected == "photo-coffee" and coffee.rank == 1
    assert cat.status == 502 and cat.hits == [] and "HTTP 500" in cat.error
    assert stop.expected is None and stop.hits == []


def _search(rank: int | None, status: int = 200) -> rep.Search:
    hits = [{"video_id": f"other-{i}", "score": 0.5 - i / 10} for i in range(5)]
    if rank is not None:
        hits.insert(rank - 1, {"video_id": "photo-coffee", "score": 0.9})
    return rep.Search("a cup of coffee", "photo-coffee", status, hits if status == 200 else [])


@pytest.mark.parametrize(("rank", "status", "ok"), [(1, 200, True), (3, 200, True), (4, 200, False),
                                                   (None, 200, False), (None, 502, False)])
def test_the_search_check_wants_the_coffee_clip_in_the_top_3(rank, status, ok):
    photos = _photos("coffee")
    videos = {"photo-coffee": rep.Video("photo-coffee", "", "food", None, [("espresso", 0.7)], True)}
    checks = {name: (passed, detail) for name, passed, detail in
              demo.search_checks([_search(rank, status), rep.Search(demo.STOP_WORDS_QUERY, None, 200, [])],
                                 photos, videos, None)}
    [(name, (passed, detail))] = [(n, c) for n, c in checks.items() if n.startswith("search finds")]
    assert name == "search finds the coffee clip by 'a cup of coffee' with an empty title"
    assert passed is ok, detail
    assert f"HTTP {status}" in detail
    assert checks["every photo clip (empty title) has concepts and a topic"][0] is True
    assert checks[f"a query of stop words only ('{demo.STOP_WORDS_QUERY}') finds nothing"][0] is True


def test_the_other_checks_fail_on_a_clip_without_concepts_or_a_stop_word_query_with_results():
    photos = _photos("coffee", "chelsea")
    videos = {"photo-coffee": rep.Video("photo-coffee", "", "food", None, [("espresso", 0.7)], True),
              "photo-chelsea": rep.Video("photo-chelsea", "", None, None, [])}
    stop = rep.Search(demo.STOP_WORDS_QUERY, None, 200, [{"video_id": "photo-coffee", "score": 0.1}])
    checks = {name: ok for name, ok, _ in demo.search_checks([_search(1), stop], photos, videos, None)}
    assert checks["every photo clip (empty title) has concepts and a topic"] is False
    assert checks[f"a query of stop words only ('{demo.STOP_WORDS_QUERY}') finds nothing"] is False
    refused = rep.Search(demo.STOP_WORDS_QUERY, None, 422, error="no content word")
    checks = {name: ok for name, ok, _ in demo.search_checks([refused], photos, videos, None)}
    assert checks[f"a query of stop words only ('{demo.STOP_WORDS_QUERY}') finds nothing"] is True


def test_without_scikit_image_the_demo_says_so_in_a_failed_check():
    [(_, ok, detail)] = demo.search_checks([], {}, {}, "no photo clips: No module named 'skimage'")
    assert not ok and "skimage" in detail
