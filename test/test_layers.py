"""The layering of the packages, read from the sources (AST, nothing imported):

* maa_core never imports ROS (maa_ros, rclpy, ROS message / launch packages), not even lazily
  inside a function, nor through importlib with a constant name;
* maa_core/go2 (deployment) imports neither maa_core/collect (data) nor maa_core/serving
  (prompt -> actor): those sit above it;
* maa_ros holds ROS code only: each module imports ROS (or a maa_ros module that does), except
  the launch description and launcher;
* no two modules of maa_core / maa_ros import each other, and there is no longer import cycle.

Every import statement counts, wherever it stands: a lazy import is still an arrow."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("maa_core", "maa_ros")
# what maa_core must never import (first dotted component)
ROS = {"maa_ros", "rclpy", "rosidl_runtime_py", "launch", "launch_ros", "std_msgs", "std_srvs",
       "diagnostic_msgs", "sensor_msgs", "builtin_interfaces", "rosbag2_py", "message_filters"}
# maa_ros modules that import no ROS themselves but describe / start the ROS graph (no library code)
ROS_GRAPH_DESCRIPTIONS = {"maa_ros", "maa_ros.launch_spec", "maa_ros.launcher"}
# (importer prefix, forbidden target prefix, why)
LOWER_TO_HIGHER = [
    ("maa_core.go2", "maa_core.collect", "deployment must not depend on data collection"),
    ("maa_core.go2", "maa_core.serving", "deployment must not depend on serving"),
]


def modules(root: Path = REPO) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py of the packages."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def _base(mod: str, path: Path, level: int, name: str | None) -> str:
    """The absolute module a (possibly relative) `from` import names."""
    if level == 0:
        return name or ""
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    pkg = pkg[: len(pkg) - (level - 1)]
    return ".".join(pkg + ([name] if name else []))


def imports(mod: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file, top-level or inside functions.
    `from pkg import name` counts as importing pkg.name when that is a module, else pkg."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(mod, path, node.level, node.module)
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in known else base, node.lineno))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            out.append((node.args[0].value, node.lineno))  # importlib with a constant name: still an arrow
    return out


def graph(root: Path = REPO) -> tuple[dict[str, Path], dict[str, dict[str, int]], dict[str, list[tuple[str, int]]]]:
    """(modules, internal edges importer -> {imported: line}, all imports importer -> [(name, line)])."""
    mods = modules(root)
    known = set(mods)
    edges, raw = {}, {}
    for m, p in mods.items():
        raw[m] = imports(m, p, known)
        e = {}
        for name, line in raw[m]:
            target = _internal(name, known)
            if target and target != m:
                e.setdefault(target, line)
        edges[m] = e
    return mods, edges, raw


def _internal(name: str, known: set[str]) -> str | None:
    """The longest known module that `name` is or lies in (a.b.c -> a.b when a.b.c is an attribute)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return None


def _rel(mods, m) -> str:
    f = mods[m]
    for parent in f.parents:  # the folder holding the package
        if parent.name in PACKAGES:
            return str(f.relative_to(parent.parent))
    return str(f)


def ros_violations(root: Path = REPO) -> list[str]:
    mods, _, raw = graph(root)
    return [f"{_rel(mods, m)}:{line}: imports {name}" for m in mods if m.split(".")[0] == "maa_core"
            for name, line in raw[m] if name.split(".")[0] in ROS]


def ros_free_in_maa_ros(root: Path = REPO) -> list[str]:
    """maa_ros modules that reach no ROS import (directly or through other maa_ros modules): ROS-free
    code belongs in maa_core."""
    mods, edges, raw = graph(root)

    def uses_ros(m, seen):
        if any(n.split(".")[0] in ROS - {"maa_ros"} for n, _ in raw[m]):
            return True
        return any(uses_ros(t, seen | {m}) for t in edges[m] if t.split(".")[0] == "maa_ros" and t not in seen)
    return [_rel(mods, m) for m in sorted(mods)
            if m.split(".")[0] == "maa_ros" and m not in ROS_GRAPH_DESCRIPTIONS and not uses_ros(m, set())]


def layer_violations(root: Path = REPO) -> list[str]:
    mods, edges, _ = graph(root)
    out = []
    for m, e in edges.items():
        for src, dst, why in LOWER_TO_HIGHER:
            if m == src or m.startswith(src + "."):
                out += [f"{_rel(mods, m)}:{line}: imports {t} ({why})" for t, line in e.items()
                        if t == dst or t.startswith(dst + ".")]
    return out


def mutual_imports(root: Path = REPO) -> list[str]:
    mods, edges, _ = graph(root)
    return [f"{_rel(mods, a)}:{edges[a][b]} <-> {_rel(mods, b)}:{edges[b][a]}"
            for a in sorted(edges) for b in sorted(edges[a]) if a < b and a in edges.get(b, {})]


def cycles(root: Path = REPO) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    _, edges, _ = graph(root)
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


# -- the tests ---------------------------------------------------------------------------------
def test_the_graph_is_read():
    """The reader sees the arrows it should (a reader that saw none would pass everything below)."""
    mods, edges, _ = graph()
    assert "maa_core.go2.controller" in mods and "maa_ros.generator_node" in mods
    assert "maa_core.errors" in edges["maa_core.go2.controller"]
    assert any(t.startswith("maa_core.") for t in edges["maa_ros.generator_node"])


def test_maa_core_never_imports_ros():
    v = ros_violations()
    assert not v, "maa_core imports ROS:\n" + "\n".join(v)


def test_maa_ros_holds_ros_code_only():
    v = ros_free_in_maa_ros()
    assert not v, "ROS-free modules in maa_ros (move them to maa_core):\n" + "\n".join(v)


def test_imports_point_down():
    v = layer_violations()
    assert not v, "imports from a lower layer to a higher one:\n" + "\n".join(v)


def test_no_two_modules_import_each_other():
    v = mutual_imports()
    assert not v, "modules that import each other:\n" + "\n".join(v)


def test_no_import_cycles():
    c = cycles()
    assert not c, "import cycles (modules of one cycle per line):\n" + "\n".join(", ".join(x) for x in c)


def test_the_checks_catch_violations(tmp_path):
    """Each check fails on a tree that breaks its rule (lazy imports included)."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "maa_core" / "go2").mkdir()
    (tmp_path / "maa_core" / "go2" / "__init__.py").write_text("")
    (tmp_path / "maa_core" / "collect").mkdir()
    (tmp_path / "maa_core" / "collect" / "__init__.py").write_text("")
    (tmp_path / "maa_core" / "go2" / "walk.py").write_text("def f():\n    from ..collect import recipe\n")
    (tmp_path / "maa_core" / "collect" / "recipe.py").write_text("from ..go2 import walk\n")
    (tmp_path / "maa_core" / "a.py").write_text("from . import b\n")
    (tmp_path / "maa_core" / "b.py").write_text("from . import c\n")
    (tmp_path / "maa_core" / "c.py").write_text(
        "import importlib\nfrom . import a\ndef g():\n    import rclpy\n    importlib.import_module('maa_ros.client')\n")
    (tmp_path / "maa_ros" / "node.py").write_text("from . import engine\nimport rclpy\n")
    (tmp_path / "maa_ros" / "engine.py").write_text("import numpy\n")
    assert ros_violations(tmp_path) == ["maa_core/c.py:4: imports rclpy", "maa_core/c.py:5: imports maa_ros.client"]
    assert layer_violations(tmp_path) == [
        "maa_core/go2/walk.py:2: imports maa_core.collect.recipe (deployment must not depend on data collection)"]
    assert mutual_imports(tmp_path) == ["maa_core/collect/recipe.py:1 <-> maa_core/go2/walk.py:2"]
    assert ros_free_in_maa_ros(tmp_path) == ["maa_ros/engine.py"]
    assert cycles(tmp_path) == [["maa_core.a", "maa_core.b", "maa_core.c"],
                                ["maa_core.collect.recipe", "maa_core.go2.walk"]]


def test_maa_core_reaches_the_ros_walk_through_its_entry_point(monkeypatch):
    """`maa demo go2` finds the rclpy half by the installed entry point; without it, one clear line."""
    import importlib.metadata

    import pytest

    from maa_core.demos import graph_walk
    from maa_core.errors import MaaError

    eps = [e for e in importlib.metadata.entry_points(group=graph_walk.ENTRY_POINTS) if e.name == graph_walk.GRAPH_WALK]
    assert [e.value for e in eps] == ["maa_ros.go2_walk:run_graph_walk"]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
    with pytest.raises(MaaError, match="entry point group 'maa.commands'") as e:
        graph_walk.graph_walker()
    assert "\n" not in str(e.value)
