"""Install-time build of the fused trainer's kernel (everything else is in pyproject.toml).

``pip install .`` and ``pip install -e .`` compile ``fused_kernel.cpp`` with the C++ compiler
directly (no torch in the build environment: setuptools only) for each fixed x86-64 target
(mtlmech/engine/fused_build.py: ``x86-64-v3`` and ``x86-64-v4``), into the package next to the source.
At run time mtlmech picks the best one this CPU runs. Where no compiler is found or a build fails,
the install goes on (one warning); mtlmech then compiles on first use, or, where it cannot, runs
the PyTorch trainer and says why.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _build_module():
    """mtlmech/engine/fused_build.py, loaded by path (importing the package would want its dependencies)."""
    path = next(HERE.glob("mtlmech/**/fused_build.py"))
    spec = importlib.util.spec_from_file_location("_mtlmech_fused_build", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path.parent


class BuildKernels(build_ext):
    """Compiles the kernel per target with the flags fused_build declares, instead of building the
    placeholder extension the usual way (that would add Python's own, machine-dependent, flags)."""

    def run(self):
        fb, package_dir = _build_module()
        source = package_dir / fb.SOURCE_NAME
        rel = package_dir.relative_to(HERE)
        dest = (HERE if self.inplace else Path(self.build_lib)) / rel
        self._outputs = []
        if platform.machine() not in ("x86_64", "AMD64"):
            print("mtlmech: not x86-64: the fused kernel will be compiled on first use (generic target)",
                  file=sys.stderr)
            return
        for target in fb.INSTALL_TARGETS:
            out = dest / fb.library_name(target)
            print(f"mtlmech: compiling the fused kernel for {target} into {out}", file=sys.stderr)
            try:
                fb.compile_kernel(source, target, out)
            except Exception as e:  # noqa: BLE001  (no compiler, a failed build: install anyway)
                detail = getattr(e, "stderr", "") or str(e)
                print(f"mtlmech: WARNING: the fused kernel for {target} was not built ({type(e).__name__}: "
                      f"{detail.strip().splitlines()[-1] if detail.strip() else ''}); it will be compiled on "
                      f"first use, or the PyTorch trainer runs instead", file=sys.stderr)
                continue
            self._outputs.append(str(out))

    def get_outputs(self):
        return list(getattr(self, "_outputs", []))

    def get_output_mapping(self):
        return {}


setup(
    # one placeholder extension: makes setuptools run build_ext and tag the wheel for this platform
    ext_modules=[Extension("mtlmech._fused_kernel_placeholder", sources=[])],
    cmdclass={"build_ext": BuildKernels},
)
