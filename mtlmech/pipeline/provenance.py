"""Provenance recorded in every summary.json: code version, package versions, device, run settings."""

from __future__ import annotations

import functools
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .paths import ProjectNotFound, project_root

PACKAGES = ("mtlmech", "torch", "numpy", "scipy", "pandas", "seaborn", "matplotlib", "dask", "distributed")


def _project() -> Path | None:
    try:
        return project_root()
    except ProjectNotFound:
        return None


CODE_PATHS = ("mtlmech", "experiments", "run_all.py", "pyproject.toml")   # outputs (figures/) do not count


def git_state(root: Path | None = None) -> dict[str, Any]:
    """Commit hash and whether the *code* has uncommitted changes (None outside git), of the project
    (:mod:`mtlmech.pipeline.paths`), not of wherever the package is installed. Outputs under figures/ do not
    count: an experiment writing its results must not make the next one look as if it ran on
    modified code."""
    root = root or _project()
    if root is None:
        return {"git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                     *CODE_PATHS], capture_output=True, text=True, check=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def relative_args(args: list[str], root: Path | None = None) -> list[str]:
    """Command-line arguments with absolute paths inside the repository made relative to it, so a
    summary does not record the folder layout of the machine that ran it."""
    root = root or _project()
    if root is None:
        return list(args)
    root = root.resolve()
    out = []
    for a in args:
        path = Path(a)
        if path.is_absolute():
            try:
                a = str(path.resolve().relative_to(root))
            except ValueError:
                pass
        out.append(a)
    return out


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


@functools.cache
def numerics() -> dict[str, Any]:
    """What the numbers depend on beyond the code and package versions: the CPU model, the fused
    kernel's declared arithmetic and build (target, compiler and version, flags; docs/reproducibility.md),
    and the BLAS libraries under torch (the PyTorch trainer's matmuls) and numpy (data generation)."""
    from ..engine import fused_build
    out: dict[str, Any] = {"cpu_model": fused_build.cpu_model()}
    try:
        from ..engine import fused
        out["fused_kernel"] = fused.arithmetic()
    except Exception as e:  # noqa: BLE001  (provenance must not fail a run)
        out["fused_kernel"] = {"unavailable": f"{type(e).__name__}: {e}"}
    try:
        import torch
        keep = ("Math Kernel Library", "MKL-DNN", "oneDNN", "OpenBLAS", "CPU capability")
        lines = [ln.strip(" -") for ln in torch.__config__.show().splitlines() if any(k in ln for k in keep)]
        blas = re.findall(r"\b(?:BLAS_INFO|LAPACK_INFO)=\w+", torch.__config__.show())
        out["torch_blas"] = "; ".join(lines + blas)
    except Exception as e:  # noqa: BLE001
        out["torch_blas"] = f"unknown ({type(e).__name__})"
    try:
        import numpy as np
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["numpy_blas"] = " ".join(str(info.get(k, "")) for k in ("name", "version", "openblas configuration")).strip()
    except Exception as e:  # noqa: BLE001  (numpy < 1.26 has no mode="dicts")
        out["numpy_blas"] = f"unknown ({type(e).__name__})"
    return out


def provenance(*, config: dict, device: str, seeds: list[int], wall_seconds: float, **extra: Any) -> dict:
    versions_ = versions()
    return {**git_state(), "torch": versions_["torch"], "versions": versions_, "device": device,
            "device_name": device_name(device), **numerics(), "seeds": seeds, "wall_seconds": round(wall_seconds, 2),
            "config": config, **extra}
