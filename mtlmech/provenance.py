"""Provenance recorded in every summary.json: code version, package versions, device, run settings."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .paths import ProjectNotFound, project_root

PACKAGES = ("mtlmech", "torch", "numpy", "scipy", "pandas", "seaborn", "matplotlib", "dask", "distributed")


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit hash and whether the working tree has uncommitted changes (None outside git), of the
    project (:mod:`mtlmech.paths`), not of wherever the package is installed."""
    if root is None:
        try:
            root = project_root()
        except ProjectNotFound:
            return {"git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, check=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def provenance(*, config: dict, device: str, seeds: list[int], wall_seconds: float, **extra: Any) -> dict:
    versions_ = versions()
    return {**git_state(), "torch": versions_["torch"], "versions": versions_, "device": device,
            "device_name": device_name(device), "seeds": seeds, "wall_seconds": round(wall_seconds, 2),
            "config": config, **extra}
