"""docs/asyncapi.json and docs/openapi.json are generated from the code; they must not drift from it."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

from cli.main import main
from devkit import api_docs
from shared import topics as registry
from shared.events import EVENT_MODELS
from shared.topics import DLQ_PARTITIONS, TOPICS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return api_docs.generated()


@pytest.fixture(scope="module")
def asyncapi(generated) -> dict:
    return json.loads(generated[api_docs.ASYNCAPI_FILE])


@pytest.mark.parametrize("name", [api_docs.ASYNCAPI_FILE, api_docs.OPENAPI_FILE])
def test_committed_docs_are_what_the_code_generates(generated, name):
    path = ROOT / "docs" / name
    assert path.exists(), f"{path} is missing: run `clipstream docs`"
    assert path.read_text() == generated[name], f"{path} is out of date: run `clipstream docs`"


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_generation_does_not_depend_on_hash_order(hash_seed):
    # FastStream orders channels by hashing; the module sorts them, so any process writes the same bytes
    done = subprocess.run([sys.executable, "-m", "cli.main", "docs", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "PYTHONHASHSEED": hash_seed})
    assert done.returncode == 0, done.stdout + done.stderr


def _deref(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        node = node[unquote(part)]
    return node


def _channels(doc: dict, address: str) -> list[dict]:
    return [c for c in doc["channels"].values() if c["address"] == address]


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_every_topic_is_in_asyncapi_with_its_payload_schema(asyncapi, topic):
    channels = _channels(asyncapi, topic.name)
    assert channels, f"{topic.name} has no channel in the AsyncAPI document"
    model = EVENT_MODELS[topic.event]
    expected = model.model_json_schema()
    for channel in channels:
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        assert channel["x-clipstream"] == {"topic": topic.name, "key_field": topic.key_field, "event": topic.event}
        for ref in channel["messages"].values():
            message = _deref(asyncapi, ref["$ref"])
            assert message["payload"] == {"$ref": f"#/components/schemas/{topic.event}"}
            assert topic.key_field in message["bindings"]["kafka"]["key"]["description"]
            schema = asyncapi["components"]["schemas"][topic.event]
            assert set(schema["properties"]) == set(expected["properties"])
            assert set(schema.get("required", [])) == set(expected.get("required", []))
    # published by someone (the gateway or a service)
    sends = [op for op in asyncapi["operations"].values()
             if op["action"] == "send" and _deref(asyncapi, op["channel"]["$ref"])["address"] == topic.name]
    assert sends, f"nobody publishes {topic.name} in the AsyncAPI document"


def test_every_consumed_topic_has_its_dead_letter_channel(asyncapi):
    consumed = {f.topic for f in api_docs.FLOWS if f.action == "consume"}
    for topic in consumed:
        channels = _channels(asyncapi, topic.dlq)
        assert channels, topic.dlq
        for channel in channels:
            assert channel["bindings"]["kafka"]["partitions"] == DLQ_PARTITIONS
            for ref in channel["messages"].values():
                assert _deref(asyncapi, ref["$ref"])["payload"] == {"$ref": "#/components/schemas/DeadLetter"}


def test_receive_operations_name_their_consumer_group(asyncapi):
    for flow in api_docs.FLOWS:
        if flow.action != "consume":
            continue
        op = asyncapi["operations"][f"{flow.service} consumes {flow.topic.name}"]
        assert op["action"] == "receive"
        group = op["bindings"]["kafka"]["groupId"]
        if "<" in flow.group:
            assert re.fullmatch(group["pattern"], flow.group.replace("<", "").replace(">", ""))
        else:
            assert group["enum"] == [flow.group]


def test_openapi_documents_every_gateway_route():
    from services.gateway.proxy import router as reads
    from services.gateway.routes import router as writes

    spec = json.loads((ROOT / "docs" / api_docs.OPENAPI_FILE).read_text())
    assert spec["info"]["title"] == "ClipStream gateway"
    routes = {(m, r.path) for router in (writes, reads) for r in router.routes for m in r.methods}
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/")}
    assert routes == documented


# --- FLOWS against the code: who publishes and who consumes which topic -----------------------------------

PUBLISH_CALLS = {"publish", "publish_many", "_publish", "_accept"}


def _source_flows() -> tuple[set[tuple[str, str, str]], dict[tuple[str, str], str]]:
    """(service, action, topic) for every consume()/publish() call under services/, and each consumer's group."""
    flows, groups = set(), {}
    for path in sorted((ROOT / "services").glob("*/**/*.py")):
        service = path.relative_to(ROOT / "services").parts[0]
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            fn = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
            named = [a.attr for a in call.args
                     if isinstance(a, ast.Attribute) and isinstance(a.value, ast.Name) and a.value.id == "topics"
                     and a.attr.isupper()]
            for const in named:
                name = getattr(registry, const).name
                if fn == "consume":
                    flows.add((service, "consume", name))
                    kw = next(k.value for k in call.keywords if k.arg == "group_id")
                    groups[(service, name)] = _render_group(kw, constants)
                elif fn in PUBLISH_CALLS:
                    flows.add((service, "publish", name))
    return flows, groups


def _render_group(node: ast.expr, constants: dict[str, str]) -> str:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return constants[node.id]
    assert isinstance(node, ast.JoinedStr), ast.dump(node)
    out = ""
    for part in node.values:
        if isinstance(part, ast.Constant):
            out += part.value
        elif isinstance(part.value, ast.Name) and part.value.id in constants:
            out += constants[part.value.id]
        else:
            out += "<*>"
    return out


def test_flows_match_the_services_code():
    found, groups = _source_flows()
    declared = {(f.service, f.action, f.topic.name) for f in api_docs.FLOWS}
    assert declared == found
    for flow in api_docs.FLOWS:
        if flow.action == "consume":
            pattern = re.escape(groups[(flow.service, flow.topic.name)]).replace(re.escape("<*>"), "<[a-z]+>")
            assert re.fullmatch(pattern, flow.group), (flow, groups[(flow.service, flow.topic.name)])


def test_cli_docs_check_and_write(tmp_path, capsys):
    assert main(["docs", "--check"]) == 0
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 1
    assert main(["docs", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [api_docs.ASYNCAPI_FILE, api_docs.OPENAPI_FILE]
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out
