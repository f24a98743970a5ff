"""The package's shape (docs/architecture.md): dependencies run one way, the wings of ``recsys`` stack in one order,
and no module imports itself round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [
        *REPO.glob("recsys/**/*.py"),
        *REPO.glob("finetune/*.py"),
        *REPO.glob("clicktune_app/*.py"),
        REPO / "app.py",
    ]
)
# The top of recsys/ holds what every wing may use; each wing may import itself, the top and the wings listed here.
TOP = {"recsys.errors", "recsys.cli", "recsys.defaults"}
WINGS = {
    "data": set(),
    "model": {"data"},
    "scoring": {"data", "model"},
    "evaluation": {"data", "model", "scoring"},
    "publish": {"data", "model", "scoring", "evaluation"},
    "feedback": {"data"},
    "loop": {"data", "model", "scoring", "evaluation", "feedback"},
    "serving": {"data", "model", "scoring", "evaluation", "publish", "feedback", "loop"},
}


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    return ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)


def imports(path: Path) -> set[str]:
    """Every module that ``path`` imports, at the top or inside a function (``from a import b``: ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


GRAPH = {module_name(path): imports(path) for path in SOURCES}
PACKAGES = {module_name(path) for path in SOURCES if path.name == "__init__.py"}
# Each module's imports of the project's own modules; packages left out, since their __init__ holds only a docstring.
MODULES = {module: {name for name in names if name in GRAPH.keys() - PACKAGES} for module, names in GRAPH.items()}


def wing(module: str) -> str | None:
    """``data`` for ``recsys.data.contract``; None for the top of recsys/ and for what lies outside it."""
    parts = module.split(".")
    return parts[1] if parts[0] == "recsys" and len(parts) == 3 else None


def test_the_graph_sees_every_layer() -> None:
    layers = {"recsys.data.contract", "finetune.train", "app", "clicktune_app.handlers", "recsys.loop.__main__"}
    assert layers <= set(GRAPH)
    assert "recsys.data.contract" in MODULES["recsys.scoring.scorer"]  # the parser sees real imports
    assert "recsys.model.architectures" in MODULES["recsys.scoring.loading"]  # and lazy ones


def test_recsys_is_its_top_and_its_wings() -> None:
    library = {module for module in GRAPH if module.startswith("recsys.") and module not in PACKAGES}
    assert {module for module in library if wing(module) is None} == TOP
    assert {wing(module) for module in library} - {None} == set(WINGS)
    assert {f"recsys.{name}" for name in WINGS} | {"recsys"} == PACKAGES - {"finetune", "clicktune_app"}


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_package_re_exports_nothing(package: str) -> None:
    assert GRAPH[package] == set(), f"{package}/__init__.py imports; name the module instead"


@pytest.mark.parametrize("module", [m for m in GRAPH if m.startswith("recsys")])
def test_the_library_knows_neither_training_nor_the_front_end(module: str) -> None:
    forbidden = {"finetune", "app", "clicktune_app", "gradio", "accelerate"}
    assert not {name.split(".")[0] for name in GRAPH[module]} & forbidden


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("recsys.")))
def test_each_wing_imports_only_the_wings_below_it(module: str) -> None:
    own = wing(module)
    allowed = set() if own is None else {own, *WINGS[own]}  # the top of recsys/ imports no wing
    wrong = sorted(target for target in MODULES[module] if wing(target) is not None and wing(target) not in allowed)
    assert not wrong, f"{module} imports {', '.join(wrong)}, against the order of the wings"


@pytest.mark.parametrize("module", [m for m in GRAPH if m.startswith("finetune")])
def test_training_never_imports_the_front_end(module: str) -> None:
    assert not {name.split(".")[0] for name in GRAPH[module]} & {"app", "clicktune_app", "gradio"}


def test_no_import_cycles() -> None:
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join((*path[path.index(module) :], module)))
        if module in done:
            return
        for target in MODULES[module]:
            visit(target, (*path, module))
        done.add(module)

    for module in MODULES:
        visit(module, ())


def drawn_picture() -> tuple[dict[str, set[str]], dict[str, str]]:
    """The mermaid picture of docs/architecture.md: each node's arrows, and the innermost subgraph it is drawn in."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    picture = text[text.index("## Imports") :]
    picture = picture[picture.index("```mermaid") : picture.index("```", picture.index("```mermaid") + 3)]
    drawn, placed, subgraphs = {}, {}, []
    for line in picture.splitlines()[2:]:
        line = line.strip()
        if line.startswith("subgraph "):  # subgraph ID ["title"]
            subgraphs.append(line.partition("[")[2].strip('"]') or line.split()[1])
        elif line == "end":
            subgraphs.pop()
        elif line:
            source, _, targets = line.partition(" --> ")
            drawn[source] = {t.strip() for t in targets.split("&")} if targets else set()
            placed[source] = subgraphs[-1] if subgraphs else ""
    return drawn, placed


def test_the_picture_in_docs_lists_exactly_the_imports() -> None:
    drawn, _ = drawn_picture()
    short = {module: module.split(".")[-1] for module in MODULES.keys() - PACKAGES}
    assert len(set(short.values())) == len(short), "two modules share a name: the picture could not tell them apart"
    real = {short[m]: {short[t] for t in names} for m, names in MODULES.items() if m not in PACKAGES}
    assert drawn == real


def test_the_picture_draws_each_module_in_its_wing() -> None:
    _, placed = drawn_picture()
    for module in MODULES.keys() - PACKAGES:
        folder = module.rpartition(".")[0].replace(".", "/")  # recsys/data, recsys, finetune, or "" for app.py
        assert placed[module.split(".")[-1]] == folder, f"{module} is drawn outside {folder or 'every subgraph'}"
