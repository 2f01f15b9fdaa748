"""The README is the user's manual: its commands, examples, tables and paths must stay true to the code."""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from cli.main import build_parser
from devkit.api_docs import flows
from services.registry import SERVICES
from shared.config_catalog import all_env_names
from shared.events import DeadLetter
from shared.topics import DLQ_PARTITIONS, TOPICS, by_name

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
OPENAPI = json.loads((ROOT / "docs" / "openapi.json").read_text())

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
BLOCKS: list[tuple[str, str, int, int]] = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(README)]
PROSE = FENCE.sub("", README)
SPANS = re.findall(r"`([^`\n]+)`", PROSE)
REPO_DIRS = ("services", "shared", "deploy", "benchmarks", "tests", "docs", "models", "scripts")


def section(title: str) -> str:
    """The text of one ``## title`` section, up to the next ``## ``."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else len(README)]


def command_lines() -> list[str]:
    """Every line of the README's shell and text blocks, continuation lines joined, comments cut."""
    out = []
    for lang, body, _, _ in BLOCKS:
        if lang not in ("", "bash", "sh", "text"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                out.append(line)
    return out


def _without_env(words: list[str]) -> list[str]:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]
    return words


def _first_table(text: str) -> list[list[str]]:
    """The rows (cells stripped) of the first markdown table in ``text``, header and separator left out."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        # a | inside `code` is not a cell boundary
        rows.append([c.strip() for c in re.split(r"\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line.strip()[1:-1])])
    return rows[2:]


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_every_environment_variable_is_documented():
    missing = sorted(env for env in all_env_names() if f"`{env}`" not in README)
    assert not missing, f"README lacks {missing}"


def test_every_topic_is_documented():
    assert all(f"`{t.name}`" in README for t in TOPICS)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


# --- (a) every `clipstream ...` line parses with the CLI's own parser -----------------------------------------

ANGLE_PLACEHOLDERS = {"service": "gateway", "topic": "watch.events"}


def _fill(word: str) -> str:
    word = re.sub(r"<([^>]+)>", lambda m: ANGLE_PLACEHOLDERS.get(m.group(1), "x"), word)
    word = word.removesuffix("...")
    return "1" if re.fullmatch(r"[A-Z][A-Z0-9_]*", word) else word  # N, S, DIR, FILE, IN, OUT, TOPIC...


def expansions(synopsis: str) -> list[list[str]]:
    """Concrete argument lists for a synopsis: without and with its [optional] parts, every a|b alternative."""
    tokens = re.findall(r"\[|\]|[^\s\[\]]+", synopsis)
    out: list[list[str]] = []
    for include in (False, True):
        words, depth = [], 0
        for tok in tokens:
            if tok in ("[", "]"):
                depth += 1 if tok == "[" else -1
                continue
            if depth == 0 or include:
                words.append(tok)
        for combo in itertools.product(*(w.split("|") for w in words)):
            args = [_fill(w) for w in combo]
            if args not in out:
                out.append(args)
    return out


def clipstream_synopses() -> list[str]:
    found = []
    for line in command_lines():
        words = _without_env(line.split())
        if words[:3] == ["docker", "compose", "exec"]:
            words = words[4:]
        if words and words[0] == "clipstream":
            found.append(" ".join(words[1:]))
    found += [span.split(" ", 1)[1] for span in SPANS if span.startswith("clipstream ")]
    return found


def test_readme_has_clipstream_commands():
    synopses = clipstream_synopses()
    assert len(synopses) > 30
    documented = {s.split()[0] for s in synopses}
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    assert subcommands <= documented, f"commands missing from the README: {sorted(subcommands - documented)}"


@pytest.mark.parametrize("synopsis", sorted(set(clipstream_synopses())))
def test_clipstream_command_parses(synopsis, capsys):
    for args in expansions(synopsis):
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"`clipstream {' '.join(args)}` (from `clipstream {synopsis}`) does not parse:\n"
                        f"{capsys.readouterr().err}")
        assert callable(parsed.func)


# --- (b) make targets ---------------------------------------------------------------------------------------


def test_every_make_target_exists():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    mentioned = set()
    for text in command_lines() + SPANS:
        words = _without_env(text.split())
        if len(words) >= 2 and words[0] == "make":
            mentioned.add(words[1])
    assert {"demo", "test"} <= mentioned
    assert mentioned <= targets, f"unknown make targets: {sorted(mentioned - targets)}"


# --- (c) JSON examples: identical to shared/examples and valid against their models -------------------------

EXAMPLE = re.compile(r"`(shared/examples/([\w.-]+)\.json)`")


def json_blocks() -> list[tuple[str, str]]:
    """(example file named just before the block, block text) for every ```json block."""
    out, previous_end = [], 0
    for lang, body, start, end in BLOCKS:
        if lang == "json":
            named = EXAMPLE.findall(README[previous_end:start])
            assert named, f"a JSON block at offset {start} names no shared/examples file before it"
            out.append((named[-1][0], body))
        previous_end = end
    return out


def test_every_example_file_is_shown():
    shown = {path for path, _ in json_blocks()}
    files = {f"shared/examples/{p.name}" for p in (ROOT / "shared" / "examples").glob("*.json")}
    assert shown == files


@pytest.mark.parametrize("path,body", json_blocks(), ids=lambda v: v if v.startswith("shared/") else "")
def test_json_example_is_the_file_and_valid(path, body):
    assert body.rstrip("\n") == (ROOT / path).read_text().rstrip("\n"), f"the README's copy of {path} differs"
    stem = Path(path).stem
    model = DeadLetter if stem == "dead-letter" else by_name(stem).event
    model.model_validate(json.loads(body))


# --- (d) curl examples: route in docs/openapi.json, body valid against the gateway's request model -----------


def curl_examples() -> list[tuple[str, str, dict[str, str], object]]:
    """(method, path, query, JSON body or None) for every curl example; all go to the gateway (localhost:8000)."""
    out = []
    for line in command_lines():
        words = shlex.split(line)
        if not words or words[0] != "curl":
            continue
        method, body, url, i = None, None, None, 1
        while i < len(words):
            w = words[i]
            if w in ("-H", "--header"):
                i += 2
                continue
            if w in ("-X", "--request"):
                method, i = words[i + 1], i + 2
                continue
            if w in ("-d", "--data", "--data-raw", "--json"):
                body, i = json.loads(words[i + 1]), i + 2
                continue
            if not w.startswith("-"):
                url = w
            i += 1
        parts = urlsplit(url if "://" in url else "http://" + url)
        assert parts.netloc == "localhost:8000", f"a curl example not against the gateway: {line}"
        out.append((method or ("POST" if body is not None else "GET"), parts.path, dict(parse_qsl(parts.query)), body))
    return out


def openapi_operation(method: str, path: str) -> dict:
    for template, ops in OPENAPI["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method.lower() in ops:
            return ops[method.lower()]
    raise AssertionError(f"{method} {path} is not a route of docs/openapi.json")


def test_curl_examples_cover_every_write_route():
    posted = {(m, p) for m, p, _, _ in curl_examples() if m == "POST"}
    for path, ops in OPENAPI["paths"].items():
        if path.startswith("/v1/") and "post" in ops:
            assert ("POST", path) in posted, f"no curl example for POST {path}"


@pytest.mark.parametrize("method,path,query,body", curl_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_curl_example_matches_the_api(method, path, query, body):
    from services.gateway import schemas

    operation = openapi_operation(method, path)
    params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert set(query) <= params, f"{method} {path}: unknown query parameters {set(query) - params}"
    request = operation.get("requestBody")
    if request is None:
        assert body is None, f"{method} {path} takes no body"
        return
    assert body is not None, f"{method} {path} needs a body"
    ref = request["content"]["application/json"]["schema"]["$ref"]
    getattr(schemas, ref.rsplit("/", 1)[1]).model_validate(body)


def test_http_table_matches_openapi():
    rows = re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/v1/[^`?]*)", section("HTTP API (gateway)"), re.MULTILINE)
    documented = {(m.upper(), p) for p, ops in OPENAPI["paths"].items() for m in ops if p.startswith("/v1/")}
    assert set(rows) == documented
    assert len(rows) == len(set(rows))


# --- (e) repository paths and links -------------------------------------------------------------------------

PATH = re.compile(rf"^(?:{'|'.join(REPO_DIRS)})/[\w./*-]*$")


def repo_paths() -> set[str]:
    paths = set()
    for line in SPANS + command_lines():
        paths |= {w.strip("'\"") for w in line.split() if PATH.match(w.strip("'\""))}
    paths |= {link for link in re.findall(r"\]\(([^)#][^)]*)\)", PROSE) if "://" not in link}
    return paths


def test_readme_mentions_paths():
    assert len(repo_paths()) > 40


@pytest.mark.parametrize("path", sorted(repo_paths()))
def test_repo_path_exists(path):
    assert list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists(), f"{path} does not exist"


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_anchors_point_at_headings():
    headings = {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", PROSE, re.MULTILINE)}
    anchors = set(re.findall(r"\]\(#([^)]+)\)", PROSE))
    assert anchors and anchors <= headings, sorted(anchors - headings)


def test_python_examples_compile_and_match_the_code():
    from shared.settings import EncoderSettings, ModelSettings
    from shared.vector_space import model_space

    space = model_space(ModelSettings())

    blocks = [body for lang, body, _, _ in BLOCKS if lang == "python"]
    assert blocks
    for body in blocks:
        compile(body, "README.md", "exec")
    [qdrant] = [b for b in blocks if "create_collection" in b]
    assert f'prefix = "{EncoderSettings().collection}"' in qdrant and f'model_id = "{space.id}"' in qdrant
    assert f'-{{model_id}}", {space.video_dim})' in qdrant and f'-{{model_id}}-search", {space.search_dim})' in qdrant


# --- the architecture picture and the topic table against the registry ---------------------------------------


NODE = re.compile(r'(\w+)(?:\[\[|\[\(|\(\[|\[)"?(.+?)"?(?:\]\]|\)\]|\]\)|\])')


def diagram_edges(diagram: str) -> set[tuple[str, str]]:
    """(from label, to label) for every arrow of a Mermaid flowchart; a label is a node's first line."""
    labels: dict[str, str] = {}
    edges = set()
    for line in diagram.splitlines()[1:]:
        for node_id, label in NODE.findall(line):
            labels[node_id] = label.split("<br/>")[0]
        line = NODE.sub(lambda m: m.group(1), line).strip()
        parts = re.split(r"\s*(?:-->|-\.->)(?:\|[^|]*\|)?\s*", line)
        for left, right in itertools.pairwise(parts):
            edges |= {(a.strip(), b.strip()) for a in left.split("&") for b in right.split("&")}
    return {(labels.get(a, a), labels.get(b, b)) for a, b in edges}


def test_architecture_diagram_shows_the_registry_and_the_flows():
    [diagram] = [body for lang, body, _, _ in BLOCKS if lang == "mermaid"]
    for t in TOPICS:
        assert f"{t.name}<br/>key {t.key_field}, {t.partitions} partitions" in diagram, t.name
    assert f"DeadLetter, {DLQ_PARTITIONS} partition" in diagram
    for service in SERVICES:
        assert f"[{service}]" in diagram, service
    assert all(word in diagram for word in ("Qdrant", "Prometheus", "Grafana"))
    edges = diagram_edges(diagram)
    for f in flows():
        edge = (f.service, f.topic.name) if f.action == "publish" else (f.topic.name, f.service)
        assert edge in edges, f"the diagram lacks {edge[0]} --> {edge[1]}"
        if f.action == "consume":
            assert (f.service, "one .dlq per topic") in edges, f"the diagram lacks {f.service}'s dead letters"
    topic_edges = {e for e in edges if e[0] in {t.name for t in TOPICS} or e[1] in {t.name for t in TOPICS}}
    declared = {(f.service, f.topic.name) if f.action == "publish" else (f.topic.name, f.service) for f in flows()}
    extra = {e for e in topic_edges - declared if "platform backends" not in e}
    assert not extra, f"the diagram shows flows the code does not have: {extra}"


def test_topic_table_matches_the_registry_and_the_flows():
    rows = {row[0]: row for row in _first_table(section("Topics and schemas"))}
    assert set(rows) == {f"`{t.name}`" for t in TOPICS} | {"`<topic>.dlq`"}
    for t in TOPICS:
        _, key, partitions, dlq, event, producers, consumers = rows[f"`{t.name}`"]
        assert (key, partitions, dlq) == (f"`{t.key_field}`", str(t.partitions), f"`{t.dlq}`")
        assert event.startswith(f"`{t.event.__name__}`")
        assert set(producers.split(", ")) == {f.service for f in flows() if f.topic == t and f.action == "publish"}
        readers = [f for f in flows() if f.topic == t and f.action == "consume"]
        for f in readers:
            assert f"{f.service} (`{f.group}`" in consumers, (t.name, f)
        if not readers:
            assert consumers == "platform backends"
    dlq_row = rows["`<topic>.dlq`"]
    assert dlq_row[2] == str(DLQ_PARTITIONS) and dlq_row[4] == "`DeadLetter`"


# --- operations: alert rules and dashboards ---------------------------------------------------------------


def test_alert_table_matches_the_rules():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/clipstream.yml").read_text())
    alerts: dict[str, list[dict]] = {}
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                alerts.setdefault(rule["alert"], []).append(rule)
    alerts_text = section("Running on Kafka and a Qdrant server (docker-compose)").split("**Alerts**", 1)[1]
    rows = {row[0].strip("`"): row for row in _first_table(alerts_text)}
    assert set(rows) == set(alerts)
    for name, found in alerts.items():
        row = " | ".join(rows[name])
        for rule in found:
            assert f"{int(rule['for'].rstrip('m'))} min" in row, (name, rule["for"])
    [feed] = alerts["ClipStreamFeedLatencySLO"]
    assert "> 0.025" in feed["expr"] and "25 ms" in rows["ClipStreamFeedLatencySLO"][1]
    [fresh] = alerts["ClipStreamFreshnessSLO"]
    assert "> 0.1" in fresh["expr"] and "100 ms" in rows["ClipStreamFreshnessSLO"][1]


def test_dashboards_are_named():
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/clipstream.yml").read_text())
    text = " ".join(README.split())  # titles may wrap
    assert f'folder "{provider["providers"][0]["folder"]}"' in text
    for path in (ROOT / "deploy/grafana/dashboards").glob("*.json"):
        title = json.loads(path.read_text())["title"].removeprefix("ClipStream / ")
        assert title in text, title


# --- benchmark tables against benchmarks/results/*.json -------------------------------------------------------


def shown_as(token: str, value: float) -> bool:
    """Whether ``token`` (like "54,882", "0.30x", "9.5") is ``value`` rounded to the digits shown."""
    number = token.replace(",", "").rstrip("x")
    decimals = len(number.split(".")[1]) if "." in number else 0
    return abs(float(number) - value) <= 0.5 * 10 ** -decimals + 1e-9


def result(name: str) -> dict:
    return json.loads((ROOT / "benchmarks" / "results" / f"{name}.json").read_text())


def bench_table(marker: str) -> list[list[str]]:
    bench = section("Benchmarks")
    return _first_table(bench[bench.index(marker):])


def test_gateway_benchmark_table():
    data = result("gateway_throughput")
    rows = bench_table("`gateway_throughput` (")
    assert len(rows) == len(data["rows"])
    for row, measured in zip(rows, data["rows"]):
        assert shown_as(row[2], measured["events_per_s"]) and shown_as(row[3], measured["p50_ms"])
        assert shown_as(row[4], measured["p99_ms"]), (row, measured)
    for row, mode in ((rows[1], "throughput"), (rows[3], "latency")):
        tput, p99 = re.fullmatch(r"(\S+) throughput, (\S+) p99", row[5]).groups()
        ratios = data["ratios"][mode]
        assert shown_as(tput, ratios["throughput_ratio"]) and shown_as(p99, ratios["p99_ratio"])


def test_recommender_scale_benchmark_table():
    data = result("recommender_scale")
    restore, routing, fresh = data["restore"], data["routing"], data["freshness"]
    on, off = fresh["changelog_on"], fresh["changelog_off"]

    def last(cell: str, n: int = 1) -> list[str]:  # the figures a cell ends with (after its label)
        return re.findall(r"\d[\d,]*(?:\.\d+)?x?", cell.split(":")[-1])[-n:]

    rows = bench_table("`recommender_scale` (")
    shown = [last(r[1]) + last(r[2]) + last(r[3]) for r in (rows[0], rows[2], rows[3])]
    shown.insert(1, last(rows[1][1], 2) + last(rows[1][2], 2) + re.findall(r"[\d.]+x", rows[1][3]))
    want = [(restore["changelog_restore_s_per_10k_users"], restore["source_rebuild_s_per_10k_users"],
             restore["source_over_changelog"]),
            (routing["gateway_p50_ms"], routing["gateway_p99_ms"], routing["direct_p50_ms"], routing["direct_p99_ms"],
             routing["gateway_over_direct_p50"], routing["gateway_over_direct_p99"]),
            (on["freshness_p99_ms"], off["freshness_p99_ms"], fresh["p99_on_over_off"]),
            (on["recommender_events_per_s"], off["recommender_events_per_s"],
             on["recommender_events_per_s"] / off["recommender_events_per_s"])]
    for tokens, values in zip(shown, want):
        assert len(tokens) == len(values) and all(shown_as(t, v) for t, v in zip(tokens, values)), (tokens, values)


def test_encoder_benchmark_table():
    data = {r["resolution"]: r for r in result("encoder_ingest")["rows"]}
    rows = bench_table("`encoder_ingest` (")
    assert {r[0] for r in rows} == set(data)
    for resolution, decode, ingest, ratio in rows:
        measured = data[resolution]
        assert shown_as(decode, measured["decode_fps"]) and shown_as(ingest, measured["ingest_fps"])
        assert shown_as(ratio, measured["ratio"])


def test_recommender_benchmark_table():
    data = result("recommender")
    feed, broker = data["feed"], data["broker"]
    rows = {r[0].split(" ")[0]: " | ".join(r) for r in bench_table("`recommender` (")}
    p50, p99 = re.search(r"p50 (\S+) ms, p99 (\S+) ms", rows["feed"]).groups()
    assert shown_as(p50, feed["feed_p50_ms"]) and shown_as(p99, feed["feed_p99_ms"])
    assert f"{feed['videos'] // 1000}k videos and {feed['users'] // 1000}k users" in rows["feed"]
    ann, brute, ratio = re.search(r"p99 (\S+) ms \| p99 (\S+) ms \(ANN (\S+)x\)", rows["candidate"]).groups()
    assert shown_as(ann, feed["ann_p99_ms"]) and shown_as(brute, feed["numpy_bruteforce_p99_ms"])
    assert shown_as(ratio, feed["ann_vs_bruteforce_p99"])
    assert shown_as(re.search(r"\| (\S+) MB", rows["memory"]).group(1), feed["memory_mb_per_10k_users"])
    ours, raw, ratio = re.search(r"\| ([\d,]+) \| ([\d,]+) for .*\((\S+)x\)", rows["events/s"]).groups()
    assert shown_as(ours, broker["recommender_events_per_s"]) and shown_as(raw, broker["raw_aiokafka_events_per_s"])
    assert shown_as(ratio, broker["ratio_to_raw"])
    load, p99, probes = re.search(r"under ([\d,]+) events/s \| p99 (\S+) ms over (\d+) probes",
                                  rows["freshness"]).groups()
    assert shown_as(load, broker["background_load_per_s"]) and shown_as(p99, broker["freshness_p99_ms"])
    assert int(probes) == broker["probes"]


def test_replay_logs_table():
    """Each real log's row against its ``benchmarks/results/replay_<log>.json`` (``python -m benchmarks.replay_logs``)."""
    rows = bench_table("`replay_logs` (")
    runs = {p.stem for p in (ROOT / "benchmarks" / "results").glob("replay_*.json")
            if {"log", "systems"} <= set(result(p.stem))}
    assert {re.search(r"`(replay_\w+)\.json`", r[0]).group(1) for r in rows} == runs, "every real-log run is shown"
    for label, counts, ours, best, ratio in rows:
        data = result(re.search(r"`(replay_\w+)\.json`", label).group(1))
        systems, r = data["systems"], data["ratio"]
        events, scored = counts.split(" / ")
        assert shown_as(events, data["events"]) and shown_as(scored, data["scored"])
        ndcg, recall = ours.split(" / ")
        assert shown_as(ndcg, systems["clipstream"]["ndcg@10"]) and shown_as(recall, systems["clipstream"]["recall@20"])
        name, figures = best.split(" ", 1)
        ndcg, recall = figures.split(" / ")
        assert name == r["best_baseline"] and shown_as(ndcg, systems[name]["ndcg@10"])
        assert shown_as(recall, systems[name]["recall@20"])
        value, lo, hi = re.fullmatch(r"(\S+) \((\S+)-(\S+)\)", ratio).groups()
        assert shown_as(value, r["ratio"]) and shown_as(lo, r["ci95"][0]) and shown_as(hi, r["ci95"][1])


def test_replay_references_table():
    data = result("replay_references")["rows"]
    rows = bench_table("`replay_references` (")
    assert [r[0] for r in rows] == [d["system"] for d in data]
    for (_, here, reference), d in zip(rows, data):
        ndcg, recall = here.split(" / ")
        assert shown_as(ndcg, d["ndcg@10"]) and shown_as(recall, d["recall@20"])
        ndcg, recall = reference.split(" / ")
        assert shown_as(ndcg, d["reference_ndcg@10"]) and shown_as(recall, d["reference_recall@20"])
        assert abs(d["ndcg@10"] - d["reference_ndcg@10"]) <= 0.005


def test_replay_sensitivity_table():
    """One row per variant (in any order), a column per tuning log: "NDCG@10 (ratio x)" as measured."""
    logs = [{d["variant"]: d for d in result(f"replay_sensitivity_{name}")["rows"]} for name in ("yoochoose", "movielens")]
    rows = bench_table("`replay_sensitivity_yoochoose.json`")
    assert sorted(r[0] for r in rows) == sorted(logs[0]) == sorted(logs[1])
    for variant, *cells in rows:
        for cell, measured in zip(cells, logs, strict=True):
            ndcg, ratio = re.fullmatch(r"(\S+) \((\S+)\)", cell).groups()
            d = measured[variant]
            assert shown_as(ndcg, d["ndcg@10"]) and shown_as(ratio, d["ratio"]), (variant, cell, d)


STYLIZATION_ROWS = {
    "decode + encode alone": ["decode + encode (baseline)"],
    "fast style network": ["style mosaic (fast)", "style waves (fast)", "style ink (fast)"],
    "full Johnson network": ["style mosaic-johnson (johnson)"],
    "style VAE": ["style mosaic-vae (vae)", "style waves-vae (vae)", "style ink-vae (vae)"],
    "LUT": ["lut teal_orange"],
    "colour:": ["colour (white balance, CLAHE, saturation)"],
    "enhance:": ["enhance (denoise, sharpen)"],
}


def test_stylization_benchmark_table():
    fps = result("stylization")["fps"]
    rows = bench_table("`stylization` (")
    assert len(rows) == len(STYLIZATION_ROWS)
    for label, at_360, at_720 in rows:
        keys = next(v for k, v in STYLIZATION_ROWS.items() if label.startswith(k))
        for cell, resolution in ((at_360, "360p"), (at_720, "720p")):
            shown = cell.split(" / ")
            assert len(shown) == len(keys), (label, cell)
            for token, key in zip(shown, keys):
                assert shown_as(token, fps[key][resolution]), (label, resolution, token, fps[key][resolution])


def test_generation_benchmark_table():
    data = result("generation")
    ort, torch = data["raw_images_per_s"]["onnxruntime"], data["raw_images_per_s"]["torch"]
    rows = bench_table("`generation` (")
    assert {r[0] for r in rows} == set(ort)
    for batch, ours, theirs, ratio in rows:
        assert shown_as(ours, ort[batch]) and shown_as(theirs, torch[batch])
        assert shown_as(ratio, ort[batch] / torch[batch])
    bench = section("Benchmarks")
    after = bench[bench.index("`generation` ("):]
    assert shown_as(re.search(r"(\d+) covers/s", after).group(1), data["covers_512_per_s"])
    assert shown_as(re.search(r"raw at batch\s+64: ([\d,]+) images/s", after).group(1), ort["64"])


# --- cheap commands, run for real ----------------------------------------------------------------------------


def clipstream(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_clipstream_config_prints_the_readme_table():
    table = clipstream("config").strip()
    assert table.startswith("| variable | default | meaning |")
    assert table in section("Configuration"), "the configuration table is stale: paste `clipstream config`"


def test_clipstream_stylize_list_has_what_the_readme_names():
    listed: dict[str, set[str]] = {}
    for kind, name in re.findall(r"│\s*(style|look|lut)\s*│\s*(\S+)\s*│", clipstream("stylize", "--list")):
        listed.setdefault(kind, set()).add(name)
    assert {"mosaic", "waves", "ink", "mosaic-johnson", "mosaic-vae"} <= listed["style"]
    assert "teal_orange" in listed["lut"]
    for _, path, _, body in curl_examples():  # what the stylization examples name exists
        for op in (body or {}).get("ops", []) if path == "/v1/stylizations" else []:
            if "style" in op:
                assert op["style"] in listed["style"]
            if "lut" in op:
                assert op["lut"].removesuffix(".cube") in listed["lut"]
            if "look" in op.get("color", {}):
                assert op["color"]["look"] in listed["look"]


def test_clipstream_models_list_shows_the_committed_models():
    out = clipstream("models", "list")
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    assert "models/video_encoder.onnx" in out and "models/generation/topic_gan.onnx" in out
    for line in out.splitlines():
        if "/models/" in line and "var/models" not in line:
            assert " present " in line, line
    assert manifest
