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
from services.registry import SERVICES
from shared import topics as registry
from shared.topics import DLQ_PARTITIONS, TOPICS, Consumes, Publishes

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
    name = topic.event.__name__
    expected = topic.event.model_json_schema()
    for channel in channels:
        assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
        assert channel["x-clipstream"] == {"topic": topic.name, "key_field": topic.key_field, "event": name}
        for ref in channel["messages"].values():
            message = _deref(asyncapi, ref["$ref"])
            assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}
            assert topic.key_field in message["bindings"]["kafka"]["key"]["description"]
            schema = asyncapi["components"]["schemas"][name]
            assert set(schema["properties"]) == set(expected["properties"])
            assert set(schema.get("required", [])) == set(expected.get("required", []))
    # published by someone (the gateway or a service)
    sends = [op for op in asyncapi["operations"].values()
             if op["action"] == "send" and _deref(asyncapi, op["channel"]["$ref"])["address"] == topic.name]
    assert sends, f"nobody publishes {topic.name} in the AsyncAPI document"


def test_every_consumed_topic_has_its_dead_letter_channel(asyncapi):
    consumed = {f.topic for f in api_docs.flows() if f.action == "consume"}
    for topic in consumed:
        channels = _channels(asyncapi, topic.dlq)
        assert channels, topic.dlq
        for channel in channels:
            assert channel["bindings"]["kafka"]["partitions"] == DLQ_PARTITIONS
            for ref in channel["messages"].values():
                assert _deref(asyncapi, ref["$ref"])["payload"] == {"$ref": "#/components/schemas/DeadLetter"}


def test_receive_operations_name_their_consumer_group(asyncapi):
    for flow in api_docs.flows():
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
    from services.gateway.insights import router as insights
    from services.gateway.proxy import router as reads
    from services.gateway.routes import router as writes

    spec = json.loads((ROOT / "docs" / api_docs.OPENAPI_FILE).read_text())
    assert spec["info"]["title"] == "ClipStream gateway"
    routes = {(m, r.path) for router in (writes, reads, insights) for r in router.routes for m in r.methods}
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if p.startswith("/v1/")}
    assert routes == documented


# --- the services' declarations (CONSUMES, PUBLISHES in services/<name>/app.py) against their code ---------

PUBLISH_CALLS = {"publish", "publish_many", "_publish", "_accept"}
"""The shared publishers and the gateway's wrappers around them (services/gateway/routes.py)."""
WRAPPERS = {"_publish", "_accept"}
"""Functions that take the topic as a parameter named ``topic`` and pass it on; their callers name it."""


def _topic_arg(call: ast.Call) -> ast.expr | None:
    """The topic argument of a consume/publish call: the second positional one, or ``topic=``."""
    if len(call.args) >= 2:
        return call.args[1]
    return next((k.value for k in call.keywords if k.arg == "topic"), None)


def _source_flows() -> tuple[set[tuple[str, str, str]], dict[tuple[str, str], str]]:
    """(service, action, topic) for every consume()/publish() call under services/, and each consumer's group.

    A call must name its topic as ``topics.NAME`` (or pass on the ``topic`` parameter of a gateway wrapper),
    so that no flow can hide behind a variable."""
    flows, groups = set(), {}
    for path in sorted((ROOT / "services").glob("*/**/*.py")):
        service = path.relative_to(ROOT / "services").parts[0]
        tree = ast.parse(path.read_text())
        constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                     for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
        wrappers = {id(c) for f in ast.walk(tree) if isinstance(f, ast.AsyncFunctionDef | ast.FunctionDef)
                    and f.name in WRAPPERS for c in ast.walk(f)}
        for call in ast.walk(tree):
            if not isinstance(call, ast.Call):
                continue
            if isinstance(call.func, ast.Attribute):  # only publisher.publish(...) or consumer.consume(...)
                module = getattr(call.func.value, "id", None)
                assert call.func.attr != "publish" or module == "publisher", \
                    f"{path.relative_to(ROOT)}:{call.lineno}: publish with shared.publisher (type check, declarations)"
                fn = call.func.attr if module in ("publisher", "consumer") else ""
            else:
                fn = getattr(call.func, "id", "")
            if fn == "Tail":  # a topic read whole without a group (shared/replay.py): a consume flow too
                arg = call.args[1] if len(call.args) >= 2 else None
                if isinstance(arg, ast.Attribute) and arg.attr == "name" and isinstance(arg.value, ast.Attribute) \
                        and getattr(arg.value.value, "id", None) == "topics":
                    name = getattr(registry, arg.value.attr).name
                    flows.add((service, "consume", name))
                    groups[(service, name)] = "<*>"
                continue
            if fn != "consume" and fn not in PUBLISH_CALLS:
                continue
            arg = _topic_arg(call)
            named = (isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "topics"
                     and arg.attr.isupper())
            if not named:
                assert id(call) in wrappers and isinstance(arg, ast.Name) and arg.id == "topic", \
                    f"{path.relative_to(ROOT)}:{call.lineno}: {fn}(...) must name its topic as topics.NAME"
                continue
            name = getattr(registry, arg.attr).name
            if fn == "consume":
                flows.add((service, "consume", name))
                kw = next(k.value for k in call.keywords if k.arg == "group_id")
                groups[(service, name)] = _render_group(kw, constants)
            else:
                flows.add((service, "publish", name))
    return flows, groups


def _render_group(node: ast.expr, constants: dict[str, str]) -> str:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Name | ast.Attribute):  # a group from the settings: declared as <name>
        return "<*>"
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


def test_every_service_declares_what_it_consumes_and_publishes():
    apps = api_docs.declarations()
    with_apps = {p.parent.name for p in (ROOT / "services").glob("*/app.py")}
    assert set(apps) == set(SERVICES) == with_apps
    for service, app in apps.items():
        assert isinstance(app.CONSUMES, tuple) and all(isinstance(c, Consumes) for c in app.CONSUMES), service
        assert isinstance(app.PUBLISHES, tuple) and all(isinstance(p, Publishes) for p in app.PUBLISHES), service
        consumed = [c.topic for c in app.CONSUMES]
        published = [p.topic for p in app.PUBLISHES]
        assert len(consumed) == len(set(consumed)) and len(published) == len(set(published)), service
        assert set(consumed) | set(published) <= set(TOPICS), service


def test_declarations_match_the_services_code():
    found, groups = _source_flows()
    declared = {(f.service, f.action, f.topic.name) for f in api_docs.flows()}
    assert declared == found, {"declared, not in the code": declared - found,
                               "in the code, not declared": found - declared}
    for flow in api_docs.flows():
        if flow.action == "consume":
            pattern = re.escape(groups[(flow.service, flow.topic.name)]).replace(re.escape("<*>"), "<[a-z]+>")
            assert re.fullmatch(pattern, flow.group), (flow, groups[(flow.service, flow.topic.name)])


def test_the_asyncapi_document_shows_exactly_the_declared_flows(asyncapi):
    # every declaration is an operation of the document, and the document has no other (besides dead letters)
    ops = {(op_id.split(" ", 1)[0], op["action"], _deref(asyncapi, op["channel"]["$ref"])["address"])
           for op_id, op in asyncapi["operations"].items()}
    declared = {(f.service, "send" if f.action == "publish" else "receive", f.topic.name) for f in api_docs.flows()}
    dead_letters = {(f.service, "send", f.topic.dlq) for f in api_docs.flows() if f.action == "consume"}
    assert ops == declared | dead_letters


def test_cli_docs_check_and_write(tmp_path, capsys):
    assert main(["docs", "--check"]) == 0
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 1
    assert main(["docs", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [api_docs.ASYNCAPI_FILE, api_docs.OPENAPI_FILE]
    assert main(["docs", "--check", "--out", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out
