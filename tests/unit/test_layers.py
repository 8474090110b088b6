"""The engine's layering (docs/engine.rst, "Layers"), read from the source with ast.

Run-time imports (module level and inside functions) must point one way:
edges -> channel -> job -> reactor -> transport -> io / binding, with no
cycle; type-only imports (under TYPE_CHECKING) may point up.  The reactor
and the transports reach no channel internals, and no module imports
another module's private name.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "sgpy")


def _modules():
    mods = {}
    for base, _dirs, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(base, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                if rel.endswith(".__init__"):
                    rel = rel[: -len(".__init__")]
                mods[rel] = path
    return mods


MODULES = _modules()


def _imports(name):
    """(imported module, kind, names) for each sgpy import of ``name``; kind: top, lazy or type.

    ``from sgpy.x import a, b`` gives (sgpy.x, kind, [a, b]), plus (sgpy.x.a, kind, []) for a name
    that is a module itself."""
    tree = ast.parse(open(MODULES[name], encoding="utf-8").read())
    found = []

    def visit(node, in_type, in_func):
        for child in ast.iter_child_nodes(node):
            t, f = in_type, in_func
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                t = True
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                f = True
            kind = "type" if t else ("lazy" if f else "top")
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("sgpy"):
                names = [a.name for a in child.names]
                plain = [n for n in names if f"{child.module}.{n}" not in MODULES]
                if child.module in MODULES and child.module != name and (plain or child.module != "sgpy"):
                    found.append((child.module, kind, plain))
                for n in names:
                    if f"{child.module}.{n}" in MODULES and f"{child.module}.{n}" != name:
                        found.append((f"{child.module}.{n}", kind, []))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name in MODULES and a.name != name:
                        found.append((a.name, kind, []))
            visit(child, t, f)

    visit(tree, False, False)
    return found


ENGINE = ["sgpy.aio", "sgpy.iscsi", "sgpy.channel", "sgpy.job", "sgpy.reactor", "sgpy.transport", "sgpy.io",
          "sgpy._binding"]


def _runtime_graph():
    return {m: {t for t, kind, _ in _imports(m) if kind != "type"} for m in MODULES}


def test_the_engine_has_no_import_cycle_at_run_time():
    graph = _runtime_graph()
    # Depth-first search for a cycle over the whole package, reporting it.
    state = {}
    stack = []

    def dfs(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                if any(x in ENGINE for x in cycle):
                    pytest.fail("import cycle: " + " -> ".join(cycle))
            elif t not in state:
                dfs(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m)


@pytest.mark.parametrize("lower, forbidden", [
    ("sgpy.io", {"sgpy.channel", "sgpy.reactor", "sgpy.transport", "sgpy.job", "sgpy.iscsi"}),
    ("sgpy.transport", {"sgpy.channel", "sgpy.reactor", "sgpy.job", "sgpy.iscsi"}),
    ("sgpy.reactor", {"sgpy.channel", "sgpy.job", "sgpy.iscsi"}),
    ("sgpy.job", {"sgpy.iscsi"}),
    ("sgpy.channel", {"sgpy.iscsi", "sgpy.aio", "sgpy.cli"}),
])
def test_a_lower_layer_never_imports_a_higher_one_at_run_time(lower, forbidden):
    ups = sorted(t for t, kind, _ in _imports(lower) if kind != "type" and t in forbidden)
    assert not ups, f"{lower} imports {ups} at run time (docs/engine.rst, Layers)"


def test_no_module_imports_another_modules_private_name():
    bad = []
    for m in MODULES:
        for target, _kind, names in _imports(m):
            for n in names:
                # Private modules (sgpy._binding, sgpy._interrupt...) are imported by name; a
                # private function, class or constant of another module is not.
                if n.startswith("_") and not n.startswith("__"):
                    bad.append(f"{m}: from {target} import {n}")
    assert not bad, bad


@pytest.mark.parametrize("name", ["sgpy.reactor", "sgpy.transport"])
def test_the_reactor_and_the_transports_reach_no_channel_internals(name):
    tree = ast.parse(open(MODULES[name], encoding="utf-8").read())
    reached = sorted({ast.unparse(node) for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_")
                      and isinstance(node.value, (ast.Attribute, ast.Name))
                      and (getattr(node.value, "attr", None) == "channel" or getattr(node.value, "id", None)
                           in ("channel", "ch"))})
    assert not reached, f"{name} reaches channel internals: {reached}"


def test_the_reactor_drives_every_endpoint_through_the_contract():
    """No endpoint class is special-cased in the reactor: every ready fd goes to its on_events."""
    src = open(MODULES["sgpy.reactor"], encoding="utf-8").read()
    assert "__class__ is" not in src and "isinstance(st" not in src
    assert "on_events(ev)" in src


def test_each_engine_module_says_its_role_in_its_first_line():
    for m in ENGINE:
        doc = ast.get_docstring(ast.parse(open(MODULES[m], encoding="utf-8").read()))
        assert doc and doc.splitlines()[0].strip(), f"{m} has no one-line role"
