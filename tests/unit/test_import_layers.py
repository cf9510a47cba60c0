"""Imports flow one way: errors/_proto -> format, opdefs -> tags, inspection, diagnose,
render -> builder, engine -> cli, notebook, dask (the package root is the public surface
above them all). No module imports a higher layer, and no two modules import each other,
directly or round a cycle; module-level and function-level imports alike."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "sm_notebook"

#: top-level name under sm_notebook -> layer (higher may import lower or equal)
LAYERS = {
    "errors": 0, "_proto": 0,
    "format": 1, "opdefs": 1,
    "tags": 2, "inspection": 2, "diagnose": 2, "graph_reach": 2, "render": 2, "showtext": 2,
    "literals": 2, "compare": 2, "parameters": 2,
    "builder": 3, "engine": 3, "ops": 3, "examples": 3, "graphview": 3,
    "cli": 4, "notebook": 4, "dask": 4,
}
#: sibling packages of one layer that must not import each other, except the named entry
SIBLING_RULES = {("builder", "engine"): {"sm_notebook.engine.probe"}, ("engine", "builder"): set()}


def _modules() -> dict:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "_proto" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict) -> set:
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                deps.add(candidate if candidate in modules else target)
        elif isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
    return {d for d in deps if d in modules and d != name and d != "sm_notebook"}


def _layer(module: str) -> tuple[str, int]:
    top = module.split(".")[1] if "." in module else ""
    return top, LAYERS[top]


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    unknown = sorted({m.split(".")[1] for m in _modules() if "." in m} - set(LAYERS))
    assert not unknown, f"add these to LAYERS: {unknown}"


def test_no_module_imports_a_higher_layer_or_a_forbidden_sibling():
    wrong = []
    for source, targets in _graph().items():
        if source == "sm_notebook":
            continue
        top, layer = _layer(source)
        for target in targets:
            other, other_layer = _layer(target)
            allowed = SIBLING_RULES.get((top, other))
            if other_layer > layer or (allowed is not None and target not in allowed):
                wrong.append(f"{source} -> {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = _graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles
