"""The import layering of the project's packages, checked by parsing the sources with ``ast`` (nothing is imported).

Layers, lowest first (a module may import its own unit and any unit of a strictly lower layer; units that share
a layer never import each other):

    0. experiments                          (substrate)
    1. aggregators | attacks                (catalogues)
    2. simulator.core                       (one run; its modules may import one another)
    3. simulator.grid | simulator.report
    4. simulator.studies
    5. simulator.cli

The facade: ``simulator/__init__.py`` may import layers 0-2, ``simulator/__main__.py`` may import the CLI, and
nothing imports either of them.

Checks, each reporting every offending ``module:line -> target``:

(a) no import, wherever it sits (module level, inside a function, under ``if TYPE_CHECKING:``), goes up a layer
    or sideways to a peer unit;
(b) an import inside a function is either of an optional dependency (``OPTIONAL``: torchvision, scikit-learn,
    PIL, each loaded only by the loaders that need it) or is marked as a deliberate delay of a heavy import: the
    import's own line, or the line just above it, carries a ``#`` comment containing "lazy" or "start-up",
    e.g. ``import matplotlib  # lazy: start-up time``. Delaying an import to dodge a cycle is not allowed;
(c) module-level imports (``TYPE_CHECKING`` blocks excluded) among the project's modules form no cycle.

A target ``from package import name`` is the submodule ``package.name`` where that file exists, else ``package``.
"""
import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("experiments", "aggregators", "attacks", "simulator")
UNITS = {"experiments": 0, "aggregators": 1, "attacks": 1, "simulator.core": 2, "simulator.grid": 3,
         "simulator.report": 3, "simulator.studies": 4, "simulator.cli": 5}
FACADE = {"simulator": 2.5, "simulator.__main__": 5.5}  # rank as an importer; as a target, above everything
OPTIONAL = {"torchvision", "sklearn", "PIL", "pandas"}
MARKERS = ("lazy", "start-up")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    line: int
    target: str  # the imported module, dotted and absolute
    in_function: bool
    type_checking: bool

    def __str__(self) -> str:
        return f"{self.module}:{self.line} -> {self.target}"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolve against the importing package
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        package = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
        base = f"{package}.{base}" if base else package
    for alias in node.names:
        yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _imports(module: str) -> list[Import]:
    found = []

    def walk(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        for child in ast.iter_child_nodes(node):
            function = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            checking = type_checking or _is_type_checking(child)
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend(Import(module, child.lineno, target, function, checking)
                             for target in _targets(module, child))
            walk(child, function, checking)

    walk(ast.parse(MODULES[module].read_text(), str(MODULES[module])), False, False)
    return found


IMPORTS = [imp for module in MODULES for imp in _imports(module)]


def _unit(module: str) -> str | None:
    """The layer unit of a project module: the longest unit name that prefixes it (None for the facade)."""
    matches = [u for u in UNITS if module == u or module.startswith(u + ".")]
    return max(matches, key=len) if matches else None


def _project(target: str) -> bool:
    return target.split(".")[0] in PACKAGES


def _allowed(module: str, target: str) -> bool:
    source, goal = _unit(module), _unit(target)
    if goal is None:  # the facade itself
        return False
    if source == goal:
        return True
    rank = FACADE[module] if source is None else UNITS[source]
    return UNITS[goal] < rank


def test_no_import_goes_up_or_sideways():
    bad = dict.fromkeys(f"{imp}  ({_unit(imp.module) or imp.module} may not import {_unit(imp.target) or imp.target})"
                        for imp in IMPORTS if _project(imp.target) and not _allowed(imp.module, imp.target))
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def _marked(imp: Import) -> bool:
    lines = MODULES[imp.module].read_text().splitlines()
    nearby = [lines[imp.line - 1]] + ([lines[imp.line - 2]] if imp.line > 1 else [])
    return any("#" in text and any(m in text.split("#", 1)[1].lower() for m in MARKERS) for text in nearby)


def test_function_level_imports_are_optional_or_marked_lazy():
    bad = dict.fromkeys(f"{imp}  (inside a function: move it to the top, or mark it '# lazy: start-up time' if heavy)"
                        for imp in IMPORTS
                        if imp.in_function and imp.target.split(".")[0] not in OPTIONAL and not _marked(imp))
    assert not bad, "unmarked function-level imports:\n" + "\n".join(bad)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in IMPORTS:
        if not imp.in_function and not imp.type_checking and imp.target in MODULES and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected component that has one (Tarjan, then a path inside it)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for component in components:
        if len(component) < 2:
            continue
        start = min(component)
        path, seen = [start], {start}
        while True:  # walk inside the component until the path closes
            succ = sorted(s for s in graph[path[-1]] if s in component)
            closing = [s for s in succ if s in seen]
            if closing:
                path = path[path.index(closing[0]):] + [closing[0]]
                break
            path.append(succ[0])
            seen.add(succ[0])
        cycles.append(path)
    return cycles


def test_no_module_level_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "module-level import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_imports_and_cycles():
    assert any(imp.module == "simulator.cli.main" and _project(imp.target) for imp in IMPORTS)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert not _allowed("aggregators.base", "attacks.base") and not _allowed("simulator.core.run", "simulator")
    assert _allowed("simulator", "simulator.core") and _allowed("simulator.__main__", "simulator.cli.main")
