"""The package's layers: each imports only the ones below it (issue 11, "layers point one way").

Every `import tvbeta.x` / `from tvbeta.x import ...` in src/tvbeta, at module level or inside a
function (a lazy import is still a dependency), is read from the source with `ast`; imports
under `if TYPE_CHECKING:` are annotations only and are skipped. The edges that still point
upwards are listed in KNOWN_BACKWARD: the test fails on any new one, and on a listed one that
has gone (so the list only shrinks). The layers also rule out import cycles between units;
`test_no_module_imports_itself_through_others` rules them out between modules too.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tvbeta"

#: Lowest first; a unit is a top-level module or subpackage of tvbeta.
LAYERS = [
    {"constants", "_warn", "interrupts", "_numba_cache"},
    {"outputs"},
    {"nuts"},  # the NUTS settings (numbers only): model files and comparisons hold them
    {"data"},
    {"kalman"},
    {"diagnostics"},  # the seed's tables of a run (numpy/pandas only): the grid ranks by them
    {"results"},
    {"model"},
    {"estimate"},
    {"evaluate"},
    {"viz"},
    {"funds"},  # many funds: runs the grid, tabulates with evaluate, draws with viz
    {"report"},
    {"config"},
    {"cli"},
    {"tvbeta"},  # the package's own __init__: the public names
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}

#: Upward edges still in the code (importer, imported), each with where it is; none today.
KNOWN_BACKWARD: set[tuple[str, str]] = set()


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tvbeta"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


MODULES = {".".join(p.relative_to(SRC.parent).with_suffix("").parts).removesuffix(".__init__"): p
           for p in sorted(SRC.rglob("*.py"))}  # fmt: skip


def _module(name: str) -> str:
    """The module of an imported name (``tvbeta.kalman.filter.x`` -> ``tvbeta.kalman.filter``)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def module_imports() -> dict[tuple[str, str], list[str]]:
    """(importer module, imported module) -> the places (file:line) of each import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "tvbeta" or node.module.startswith("tvbeta."):
                    targets = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("tvbeta.")]
            for target in map(_module, targets):
                if target != module:
                    where = f"{path.relative_to(SRC.parent)}:{node.lineno}"
                    edges.setdefault((module, target), []).append(where)
    return edges


def import_edges() -> dict[tuple[str, str], list[str]]:
    """(importer unit, imported unit) -> the places (file:line) of each cross-unit import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for (importer, imported), where in module_imports().items():
        pair = (unit_of(importer), unit_of(imported))
        if pair[0] != pair[1] and pair[1] in RANK:
            edges.setdefault(pair, []).extend(where)
    return edges


def test_every_unit_of_the_package_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert units - RANK.keys() == set(), "give each new module a layer in LAYERS"


def test_no_new_import_points_up_the_layers():
    backward = {edge: where for edge, where in import_edges().items()
                if RANK[edge[0]] < RANK[edge[1]]}
    new = {edge: where for edge, where in backward.items() if edge not in KNOWN_BACKWARD}
    assert not new, f"imports from a lower layer into a higher one: {new}"
    gone = KNOWN_BACKWARD - backward.keys()
    assert not gone, f"these upward edges are gone: remove them from KNOWN_BACKWARD: {gone}"


def test_no_module_imports_itself_through_others():
    """No cycle in the module graph (lazy imports included): each module's imports, followed
    transitively, never lead back to it."""
    graph: dict[str, set[str]] = {}
    for importer, imported in module_imports():
        graph.setdefault(importer, set()).add(imported)
    for start in MODULES:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            module = todo.pop()
            assert module != start, f"{start} imports itself through {sorted(seen)}"
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))
