"""The engine's shape: no import cycles (counting imports inside functions), at most 12 files
directly in engine/, and no module-level state that anything changes. The layer contracts
(clients never import server code, and so on) are checked by import-linter (`lint-imports`,
configured in pyproject.toml and run by scripts/test)."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MAX_TOP_LEVEL_FILES = 12
MUTABLE_FACTORIES = {
    "list",
    "dict",
    "set",
    "bytearray",
    "defaultdict",
    "deque",
    "OrderedDict",
    "Counter",
    "Random",
}
MUTATING_METHODS = {
    "append",
    "extend",
    "insert",
    "add",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "remove",
    "discard",
    "clear",
    "sort",
    "reverse",
    "appendleft",
    "extendleft",
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def engine_modules(root: Path = ENGINE) -> dict[str, ast.Module]:
    return {
        module_name(path, root): ast.parse(path.read_text(), str(path))
        for path in sorted(root.rglob("*.py"))
    }


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def runtime_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """Every engine module this one imports when it runs: at the top, inside functions and
    methods, anywhere but under `if TYPE_CHECKING:`."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if is_type_checking_block(child):
                assert isinstance(child, ast.If)
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                # `from package import module` imports the submodule itself.
                names = [
                    f"{child.module}.{alias.name}"
                    if f"{child.module}.{alias.name}" in modules
                    else child.module
                    for alias in child.names
                ]
            else:
                names = []
            for name in names:
                target = resolve(name)
                if target is not None:
                    found.add(target)
            visit(child)

    visit(tree)
    return found


def import_cycles(modules: dict[str, ast.Module]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    names = set(modules)
    graph = {m: sorted(runtime_imports(tree, names) - {m}) for m, tree in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
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

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def module_containers(tree: ast.Module) -> set[str]:
    """Names a module binds at its top level to a mutable container."""
    containers: set[str] = set()
    literal = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        factory = isinstance(value, ast.Call) and (
            getattr(value.func, "id", None) in MUTABLE_FACTORIES
            or getattr(value.func, "attr", None) in MUTABLE_FACTORIES
        )
        if isinstance(value, literal) or factory:
            containers |= {t.id for t in targets if isinstance(t, ast.Name)}
    return containers


def changed_names(tree: ast.Module) -> list[tuple[str, int]]:
    """(name, line) of every bare name whose contents some statement changes: `n[k] = v`,
    `n.attr = v`, `del n[k]`, `n += x`, `n.append(x)` and the like."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        changed: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            changed = [
                t.value for t in node.targets if isinstance(t, (ast.Subscript, ast.Attribute))
            ]
        elif isinstance(node, ast.AugAssign):
            target = node.target
            changed = [
                target.value if isinstance(target, (ast.Subscript, ast.Attribute)) else target
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in MUTATING_METHODS
        ):
            changed = [node.func.value]
        found += [(c.id, node.lineno) for c in changed if isinstance(c, ast.Name)]
    return found


def mutated_module_state(modules: dict[str, ast.Module]) -> list[str]:
    """Module-level mutable containers that some code changes (in their own module or, imported
    by name, in another), and `global` statements."""
    defined = {name: module_containers(tree) for name, tree in modules.items()}

    def origin(module: str, name: str, seen: int = 0) -> tuple[str, str] | None:
        """Where a module-level name of `module` is defined as a container, following imports."""
        if name in defined.get(module, set()):
            return module, name
        if module not in modules or seen > 20:
            return None
        for node in ast.walk(modules[module]):  # imports inside functions count too
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return origin(node.module, alias.name, seen + 1)
        return None

    problems: list[str] = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                problems.append(f"{name}:{node.lineno}: `global {', '.join(node.names)}`")
        for changed, line in changed_names(tree):
            source = origin(name, changed)
            if source is not None:
                problems.append(f"{name}:{line}: changes module-level `{'.'.join(source)}`")
    return problems


def test_no_engine_module_imports_itself_back_even_through_imports_inside_functions() -> None:
    assert import_cycles(engine_modules()) == []


def test_at_most_twelve_files_sit_directly_in_engine() -> None:
    files = sorted(p.name for p in ENGINE.iterdir() if p.is_file())
    assert len(files) <= MAX_TOP_LEVEL_FILES, files


def test_the_facade_paths_the_engine_api_fixes_still_import() -> None:
    import engine
    import engine.assignors
    import engine.cluster
    import engine.errors
    import engine.partitioner

    assert engine.Cluster is engine.cluster.Cluster
    assert callable(engine.assignors.assign) and engine.assignors.Subscription
    assert callable(engine.partitioner.murmur2)
    assert issubclass(engine.errors.TopicExistsError, engine.errors.KafkaError)


def test_no_module_level_state_is_changed_and_nothing_is_global() -> None:
    assert mutated_module_state(engine_modules()) == []


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """The cycle and state checks fail on a registry filled at import time and on a cycle that
    only closes inside a function."""
    package = tmp_path / "engine"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from engine import b\n\nREGISTRY = []\nREGISTRY.append(b)\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from engine import c\n\n"
        "def late():\n    from engine.a import REGISTRY\n    return REGISTRY\n"
    )
    (package / "c.py").write_text("from engine import b\n")
    modules = engine_modules(package)
    assert import_cycles(modules) == [["engine.a", "engine.b"]]
    assert mutated_module_state(modules) == ["engine.a:4: changes module-level `engine.a.REGISTRY`"]
    (package / "c.py").write_text("from engine.a import REGISTRY\n\nREGISTRY.append(1)\n")
    assert "engine.c:3: changes module-level `engine.a.REGISTRY`" in mutated_module_state(
        engine_modules(package)
    )
