"""The package's shape (docs/architecture.md): dependencies run one way, and no module imports itself round a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(
    [
        *REPO.glob("recsys/*.py"),
        *REPO.glob("finetune/*.py"),
        REPO / "app.py",
        REPO / "app_layout.py",
        REPO / "app_handlers.py",
    ]
)


def module_name(path: Path) -> str:
    relative = path.relative_to(REPO).with_suffix("")
    return ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)


def imports(path: Path) -> set[str]:
    """Every module that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


GRAPH = {module_name(path): imports(path) for path in SOURCES}


def test_the_graph_sees_every_layer() -> None:
    assert {"recsys.contract", "finetune.train", "app", "app_handlers"} <= set(GRAPH)
    assert "recsys.contract" in GRAPH["recsys.scoring"]  # the parser sees real imports


@pytest.mark.parametrize("module", [m for m in GRAPH if m.startswith("recsys")])
def test_the_library_knows_neither_training_nor_the_front_end(module: str) -> None:
    forbidden = {"finetune", "app", "app_layout", "app_handlers", "gradio", "accelerate"}
    assert not {name.split(".")[0] for name in GRAPH[module]} & forbidden


@pytest.mark.parametrize("module", [m for m in GRAPH if m.startswith("finetune")])
def test_training_never_imports_the_front_end(module: str) -> None:
    assert not {name.split(".")[0] for name in GRAPH[module]} & {"app", "app_layout", "app_handlers", "gradio"}


def test_no_import_cycles() -> None:
    local = {module: {name for name in names if name in GRAPH} for module, names in GRAPH.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            pytest.fail("import cycle: " + " -> ".join((*path[path.index(module) :], module)))
        if module in done:
            return
        for target in local[module]:
            visit(target, (*path, module))
        done.add(module)

    for module in local:
        visit(module, ())


def test_the_picture_in_docs_lists_exactly_the_imports() -> None:
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    picture = text[text.index("## Imports") :]
    picture = picture[picture.index("```mermaid") : picture.index("```", picture.index("```mermaid") + 3)]
    drawn = {}
    for line in picture.splitlines()[2:]:
        line = line.strip()
        if line and not line.startswith(("subgraph", "end")):
            source, _, targets = line.partition(" --> ")
            drawn[source] = {t.strip() for t in targets.split("&")} if targets else set()
    short = {module: module.split(".")[-1] for module in GRAPH}
    packages = {"recsys", "finetune"}  # their __init__ modules are empty
    real = {short[m]: {short[t] for t in names if t in GRAPH} for m, names in GRAPH.items() if m not in packages}
    assert drawn == real
