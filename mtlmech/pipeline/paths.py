"""Where the project lives: the folder whose ``experiments/`` the suite runs and under which the
default outputs (``figures/``, ``results/quick/``) are written.

The root never comes from where the ``mtlmech`` package is installed (a non-editable install lives
in site-packages). It is, first match wins:

1. the folder given with ``mtlmech --root DIR`` (or :func:`use_root`);
2. the ``MTLMECH_ROOT`` environment variable;
3. the project holding the experiment file being run (``<root>/experiments/<name>.py``), or the
   script being run (``<root>/run_all.py``, ``<root>/experiments/<name>.py``), so that
   ``python experiments/X.py`` writes into its own project from any working directory;
4. the current directory or the nearest parent that holds an ``experiments/`` folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import UsageError

ENV = "MTLMECH_ROOT"
_chosen: Path | None = None


class ProjectNotFound(UsageError):
    """No project root could be found: reported as one line, exit code 2."""


def is_project(path: Path) -> bool:
    return (Path(path) / "experiments").is_dir()


def _checked(path: Path, origin: str) -> Path:
    path = Path(path).expanduser().resolve()
    if not is_project(path):
        raise ProjectNotFound(f"{origin} {path} is not an mtlmech project (it has no experiments/ folder)")
    return path


def use_root(path: Path | str | None) -> None:
    """Fix the project root for this process (``--root``); ``None`` goes back to the search."""
    global _chosen
    _chosen = None if path is None else _checked(Path(path), "--root")


@contextmanager
def root_scope() -> Iterator[None]:
    """Whatever :func:`use_root` sets inside the block is undone after it (``mtlmech.console.main``
    is a library function too: its ``--root`` must not outlive the call)."""
    global _chosen
    previous = _chosen
    try:
        yield
    finally:
        _chosen = previous


@contextmanager
def using_root(path: Path) -> Iterator[Path]:
    """Within the block, :func:`project_root` is ``path`` (restored afterwards)."""
    global _chosen
    previous, _chosen = _chosen, _checked(Path(path), "project root")
    try:
        yield _chosen
    finally:
        _chosen = previous


def project_of(path: Path | str | None) -> Path | None:
    """The project holding file ``path`` when it is ``<root>/experiments/*.py`` or ``<root>/*.py``."""
    if not path:
        return None
    path = Path(path).resolve()
    for folder in (path.parent.parent, path.parent) if path.parent.name == "experiments" else (path.parent,):
        if is_project(folder):
            return folder
    return None


def _file_of(obj: Any) -> str | None:
    """The file a module, or the module an object was defined in, was loaded from."""
    if isinstance(obj, ModuleType):
        return getattr(obj, "__file__", None)
    return getattr(sys.modules.get(getattr(obj, "__module__", None) or ""), "__file__", None)


def project_root(near: Any = None) -> Path:
    """The project root by the rules in this module's docstring.

    ``near`` is an object (function, class) defined in an experiment file: its project is tried
    before the running script's and the current directory.
    """
    if _chosen is not None:
        return _chosen
    if os.environ.get(ENV):
        return _checked(Path(os.environ[ENV]), ENV)
    for obj in (near, sys.modules.get("__main__")):
        found = project_of(_file_of(obj)) if obj is not None else None
        if found is not None:
            return found
    cwd = Path.cwd().resolve()
    for folder in (cwd, *cwd.parents):
        if is_project(folder):
            return folder
    raise ProjectNotFound(f"no mtlmech project at or above {cwd} (a folder with experiments/): run inside a "
                          f"clone of the repository, or pass --root DIR or set {ENV}")
