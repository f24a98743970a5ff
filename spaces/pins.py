"""The Space's requirements.txt: the repository's pins for exactly what the bundled Python files import.

Used by ``spaces/build.py`` (a script beside this one; spaces/ is not a package).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from recsys.errors import UserError  # spaces/build.py puts the repository on sys.path

TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"  # CPU wheels: no CUDA download
# Needed at run time but never imported by name: pandas.read_parquet (recsys.data.contract) loads pyarrow.
IMPLICIT_REQUIREMENTS = {"pandas": ("pyarrow",)}


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """The requirement lines of a requirements file, by canonical distribution name (options and -r skipped)."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            pins[canonical(re.split(r"[<>=!~\[;\s]", line, maxsplit=1)[0])] = line
    return pins


def imported_modules(folder: Path) -> dict[str, list[str]]:
    """Third-party top-level modules that the Python files under ``folder`` import, with the files importing each.

    Imports inside functions count too: a lazy import still has to be installed.
    """
    local = {p.stem for p in folder.glob("*.py")} | {p.parent.name for p in folder.glob("*/__init__.py")}
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in local and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, [])
                    if path.relative_to(folder).as_posix() not in found[top]:
                        found[top].append(path.relative_to(folder).as_posix())
    return found


def requirements_for(modules: dict[str, list[str]], pins: dict[str, str]) -> list[str]:
    """Requirement lines for the distributions providing ``modules``: the repository's pin, else the installed one."""
    providers = importlib.metadata.packages_distributions()
    distributions = set()
    for module, files in sorted(modules.items()):
        if module not in providers:
            raise UserError(
                f"{', '.join(files)} import(s) {module!r}, which is not installed here, so it cannot be pinned; "
                "install the project's requirements (make install) and build again"
            )
        distributions.update(providers[module])
        distributions.update(IMPLICIT_REQUIREMENTS.get(module, ()))
    lines = {canonical(d): pins.get(canonical(d)) or f"{d}=={importlib.metadata.version(d)}" for d in distributions}
    ordered = [lines[name] for name in sorted(lines)]
    return [TORCH_INDEX, *ordered] if "torch" in lines else ordered


def gradio_version(pins: dict[str, str]) -> str:
    """The installed gradio, which must be the pinned one: the Space installs sdk_version."""
    installed = importlib.metadata.version("gradio")
    if pins.get("gradio") != f"gradio=={installed}":
        raise UserError(
            f"gradio {installed} is installed but requirements.txt has {pins.get('gradio')!r}; "
            "install the pinned version (make install) so that the Space runs what was tested"
        )
    return installed
