"""Named features: functions of the raw variables, composable with ``&``, ``|``, ``~``, ``^``.

A feature maps raw variables ``z`` (n, n_raw) to one value per row (booleans as 0.0 / 1.0).
Its ``name`` is a readable formula, used in docs, configs and hashes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Feature:
    name: str
    fn: Callable[[np.ndarray], np.ndarray]

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(z), dtype=np.float64)

    def __repr__(self) -> str:
        return self.name

    def __and__(self, other: Feature) -> Feature:
        return and_(self, other)

    def __or__(self, other: Feature) -> Feature:
        return or_(self, other)

    def __xor__(self, other: Feature) -> Feature:
        return xor(self, other)

    def __invert__(self) -> Feature:
        return not_(self)


def var(i: int, name: str | None = None) -> Feature:
    """Raw variable ``i`` itself (a bit or a real)."""
    return Feature(name or f"x{i}", lambda z: z[:, i])


def parity(bits: Sequence[int]) -> Feature:
    """1 when an odd number of the given bits are on (XOR of a bit subset)."""
    bits = list(bits)
    return Feature(f"parity({','.join(f'x{i}' for i in bits)})", lambda z: z[:, bits].sum(axis=1) % 2)


def and_(*fs: Feature) -> Feature:
    return Feature("(" + " ∧ ".join(f.name for f in fs) + ")", lambda z: np.prod([f(z) > 0.5 for f in fs], axis=0))


def or_(*fs: Feature) -> Feature:
    return Feature("(" + " ∨ ".join(f.name for f in fs) + ")", lambda z: np.any([f(z) > 0.5 for f in fs], axis=0))


def xor(*fs: Feature) -> Feature:
    return Feature("(" + " ⊕ ".join(f.name for f in fs) + ")", lambda z: np.sum([f(z) > 0.5 for f in fs], axis=0) % 2)


def not_(f: Feature) -> Feature:
    return Feature(f"¬{f.name}", lambda z: f(z) <= 0.5)


def threshold(f: Feature, t: float) -> Feature:
    """1 when ``f > t``."""
    return Feature(f"[{f.name} > {t:g}]", lambda z: f(z) > t)


def linear(weights: dict[int, float], bias: float = 0.0) -> Feature:
    """``bias + Σ w_i z_i`` over the named variables."""
    idx, w = list(weights), np.array(list(weights.values()), dtype=np.float64)
    terms = " + ".join(f"{wi:g}·x{i}" for i, wi in weights.items())
    return Feature(f"({terms} + {bias:g})" if bias else f"({terms})", lambda z: z[:, idx] @ w + bias)


def sigmoid(f: Feature) -> Feature:
    """The logistic function of another feature, e.g. ``sigmoid(linear({0: 1, 1: 1}))``."""
    return Feature(f"σ{f.name}", lambda z: 1.0 / (1.0 + np.exp(-f(z))))


def if_then_else(cond: Feature, then: Feature, other: Feature, at: float = 0.5) -> Feature:
    """``then`` where ``cond > at``, else ``other`` (Caruana's Peaks functions use this)."""
    return Feature(f"IF {cond.name} > {at:g} THEN {then.name} ELSE {other.name}",
                   lambda z: np.where(cond(z) > at, then(z), other(z)))


def equals(a: Feature, b: Feature) -> Feature:
    """1 where two (boolean) features agree: a sampling constraint such as "A = B"."""
    return Feature(f"[{a.name} = {b.name}]", lambda z: (a(z) > 0.5) == (b(z) > 0.5))


def differs(a: Feature, b: Feature) -> Feature:
    """1 where two (boolean) features disagree: a probe set such as "A ≠ B"."""
    return Feature(f"[{a.name} ≠ {b.name}]", lambda z: (a(z) > 0.5) != (b(z) > 0.5))


def constant(value: float) -> Feature:
    return Feature(f"{value:g}", lambda z: np.full(len(z), float(value)))
