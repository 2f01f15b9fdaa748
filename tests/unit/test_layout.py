"""The layout keeps serving and offline code apart (issue 15): ``shared`` is the library at the bottom,
no service imports another, no package cycle, ``services/`` holds serving code only, the README's layout
table names every top-level package, the runtime image carries no training checkpoints, and settings are
built once, where a process starts, not inside the library or the services."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from collections import defaultdict
from pathlib import Path

import pytest

from tests.unit.test_readme import _first_table, section

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "cli", "training", "evaluation", "devkit", "benchmarks")
OFFLINE = ("cli", "training", "evaluation", "devkit", "benchmarks")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            out[".".join(path.relative_to(ROOT).with_suffix("").parts)] = path
    return out


def imported(path: Path) -> set[str]:
    """Every project module a file imports, at the top or inside a function (a lazy import counts)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in PACKAGES}


def unit(module: str) -> str:
    """The node of the package graph: a service is a unit of its own, other packages are one each."""
    parts = module.split(".")
    if parts[0] == "services" and len(parts) > 1 and (ROOT / "services" / parts[1]).is_dir():
        return f"services.{parts[1]}"
    return parts[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the modules that do it (for the failure message)."""
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, path in modules().items():
        for name in imported(path):
            a, b = unit(module), unit(name)
            if a != b:
                edges[a][b].add(module)
    return edges


def test_shared_imports_no_other_package(graph):
    assert not {b: sorted(m) for b, m in graph["shared"].items()}, "shared is the library at the bottom"


def test_no_service_imports_another(graph):
    bad = {(a, b): sorted(m) for a, row in graph.items() for b, m in row.items()
           if a.startswith("services.") and b.startswith("services.")}
    assert not bad


def test_services_import_no_offline_package(graph):
    bad = {(a, b): sorted(m) for a, row in graph.items() for b, m in row.items()
           if a.startswith("services") and b in OFFLINE}
    assert not bad


def test_the_package_graph_has_no_cycle(graph):
    nodes = set(graph) | {b for row in graph.values() for b in row}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("package cycle: " + " -> ".join(cycle) + f" ({dict(graph[node])[nxt]})")
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(nodes):
        if node not in state:
            visit(node)


def test_services_hold_serving_code_only():
    offline = re.compile(r"^(evaluation|replay|baselines|cli|demo.*|train.*|.*_cli|api_docs|tail)\.py$")
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "services").rglob("*.py") if offline.match(p.name)]
    assert not found, "offline modules belong in training/, evaluation/, devkit/ or cli/"
    assert not (ROOT / "services" / "trainer").exists()


SETTINGS_BUILDERS = ("shared/settings.py", "services/registry.py")
"""Where ``shared/`` and ``services/`` may build settings: their definitions and the runner (the entry point)."""


def _name(node: ast.AST) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def settings_calls(path: Path, root: Path = ROOT) -> list[str]:
    """``name(...)`` calls of a name ending in ``Settings`` (``KafkaSettings()``, ``s.Settings(...)``) in a file,
    and such a class given as a ``default_factory`` (a dataclass field that would build its own)."""
    found, where = [], path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            if _name(node.func).endswith("Settings"):
                found.append(f"{where}:{node.lineno} {_name(node.func)}(...)")
            found += [f"{where}:{node.lineno} default_factory={_name(k.value)}" for k in node.keywords
                      if k.arg == "default_factory" and _name(k.value).endswith("Settings")]
    return found


def test_the_settings_check_sees_calls_and_factories(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("a = KafkaSettings()\nb = settings.Settings(x=1)\nc = field(default_factory=FetchSettings)\n"
                     "d = settings.kafka\ne = Stylizer(settings)\n")
    assert [c.split(" ", 1)[1] for c in settings_calls(probe, tmp_path)] == [
        "KafkaSettings(...)", "Settings(...)", "default_factory=FetchSettings"]


def test_settings_are_built_only_by_the_entry_points():
    """Settings are read from the environment once, at start-up, and handed down (issue 15): no function in
    ``shared/`` or ``services/`` falls back to ``KafkaSettings()`` and the like."""
    calls = [call for package in ("shared", "services") for path in sorted((ROOT / package).rglob("*.py"))
             if str(path.relative_to(ROOT)) not in SETTINGS_BUILDERS for call in settings_calls(path)]
    assert not calls, "settings built outside the entry points:\n" + "\n".join(calls)


def test_the_layout_table_names_every_top_level_package_and_every_path_exists():
    rows = _first_table("| path | what it is |" + section("Architecture").split("| path | what it is |", 1)[1])
    paths = [row[0].strip("`") for row in rows]
    for path in paths:
        assert (ROOT / path).exists(), path
    top_level = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert top_level == set(PACKAGES)
    listed = {p.rstrip("/").split("/")[0] for p in paths}
    assert top_level <= listed, top_level - listed


def test_the_runtime_image_carries_no_training_checkpoints():
    ignored = (ROOT / ".dockerignore").read_text().split()
    checkpoints = [p.relative_to(ROOT) for p in (ROOT / "models").rglob("*.pt")]
    assert checkpoints, "the repository has checkpoints: this test must see them"
    for path in checkpoints:
        # .dockerignore leaves out a path when a pattern matches it or one of its folders
        assert any(fnmatch(str(p), pattern) for p in (path, *path.parents) for pattern in ignored), \
            f"{path} would be copied into the image"
    dockerfile = (ROOT / "Dockerfile").read_text()
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    copied = re.findall(r"^COPY (?!--from)(\S+)", runtime, re.M)
    assert not [c for c in copied if c.rstrip("/").split("/")[0] in ("training", "evaluation", "devkit", "tests")]
