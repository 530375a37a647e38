"""The shape of the package, read from its source: no private name used across modules, no import cycle,
and front doors (CLI, pipeline, Airflow) that reach the models only through the app layer."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "shopgen"
FRONT_DOORS = ("shopgen.cli", "shopgen.pipeline", "shopgen.airflow", "shopgen.airflow.operators")
# what lies below the app layer: a front door imports none of it
BELOW_APP = ("shopgen.synthesizer", "shopgen.tabular", "shopgen.text", "shopgen.grid", "shopgen.inference",
             "shopgen.detection", "shopgen.safepickle", "shopgen.evaluation", "shopgen.validation", "shopgen.bundle",
             "shopgen.db.load", "shopgen.db.ddl", "shopgen.db.target", "shopgen.conditions", "shopgen.ids")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) for every import in the file, those inside functions and under
    `if TYPE_CHECKING:` included."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.module, a.name, node.lineno) for a in node.names]
    return out


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_imported_or_reached_across_modules():
    """`from shopgen.x import _y` and `x._y` on an imported shopgen module, in the package, its tests, its
    benchmarks and scripts: a private name is the module's own, free to change."""
    found = []
    for path in python_files("shopgen", "tests", "benchmarks", "scripts"):
        tree = ast.parse(path.read_text(), str(path))
        modules = set()
        for module, name, line in imports(path):
            if not module.startswith("shopgen"):
                continue
            if name is not None and is_private(name):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}.{name}")
            if name is not None and (PACKAGE / Path(*module.split(".")[1:], name)).with_suffix(".py").exists():
                modules.add(name)  # `from shopgen.text import precision`
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {a.asname for a in node.names if a.name.startswith("shopgen") and a.asname}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in modules and is_private(node.attr)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} reaches {node.value.id}.{node.attr}")
    assert not found, "\n".join(found)


def test_no_private_member_is_reached_from_outside_its_object():
    """`obj._m` where `_m` is a method or attribute a shopgen class keeps private, on anything but `self` or
    `cls`: tests and benchmarks use what a user can."""
    private = set()
    for path in python_files("shopgen"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                private |= {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                            and is_private(n.name)}
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and is_private(node.attr)
                    and isinstance(node.value, ast.Name) and node.value.id == "self"):
                private.add(node.attr)
    found = []
    for path in python_files("shopgen", "tests", "benchmarks", "scripts"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in private
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} reaches .{node.attr}")
    assert not found, "\n".join(found)


def test_no_import_cycle_in_the_package():
    """Imports inside functions count too: a cycle there is the same tangle, only deferred; so do types named
    for annotations (under TYPE_CHECKING): a module that needs another's type to be read depends on it."""
    modules = {module_name(p): p for p in python_files("shopgen")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, imported, _ in imports(path):
            if imported is not None and f"{module}.{imported}" in modules:
                targets.add(f"{module}.{imported}")
            elif module in modules:
                targets.add(module)
        # a package's __init__ importing its own modules, and a module importing its package, are one unit
        graph[name] = {t for t in targets if t != name and not t.startswith(name + ".") and not name.startswith(t + ".")}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(cycles)


def test_front_doors_reach_the_models_only_through_the_app_layer():
    found = []
    for path in python_files("shopgen"):
        if module_name(path) not in FRONT_DOORS:
            continue
        for module, name, line in imports(path):
            full = module if name is None else f"{module}.{name}"
            if any(full == b or full.startswith(b + ".") or module == b or module.startswith(b + ".") for b in BELOW_APP):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {full}")
    assert not found, "\n".join(found)
