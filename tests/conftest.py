"""Import mtlmech before anything loads torch, so its OpenMP settings (mtlmech/__init__.py) apply."""

import mtlmech  # noqa: F401
