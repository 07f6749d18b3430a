"""CS97's "some inputs work better as outputs" benchmark (C97 §4.9, Table 6; CS97 Fig. 2a).

A, B ~ U[−5, 5], each entering as a 10-bit binary code of its bin index (20 inputs). Main task
F1 = sigmoid(A + B). The extra information is either F2 = sigmoid(A − B) (``extra="F2"``) or the
two noisy features EF(A) = A + s·U[−1, 1], EF(B) = B + s·U[−1, 1] (``extra="EF"``, noise scale s).
The noise draws are raw variables that are *not* network inputs (:class:`NuisanceInputSpace`), so
every feature stays a deterministic function of the raw row and all variants see the same rows.

EF values are mapped affinely from their range [−5 − s, 5 + s] onto [0, 1] (a fixed map per s, the
same whether EF is an input or a sigmoid-output target).

Variants: ``"in"`` — F1 is the only task, the extra features are extra inputs (STD+IN);
``"out"`` — F1 plus the extra features as outputs (STD+OUT; STD is this net with loss on F1 only,
so its extra outputs carry no gradient and never touch the hidden layer); ``"both"`` — the extra
features are extra inputs *and* extra outputs, so STD, STD+IN and STD+OUT can be one net shape
trained from one initial draw: a condition that must not see the extra features gets those input
columns set to 0 (:func:`without_extra_inputs`), which makes their weights carry no signal and
receive no gradient, i.e. it is exactly the smaller net.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .features import Feature, linear, sigmoid, var
from .inputs import BinaryCode, InputSpace
from .tasks import Problem, Splits, Task, register_problem

EXTRAS = ("F2", "EF")
VARIANTS = ("in", "out", "both")
RANGE = 5.0


@dataclass(frozen=True)
class NuisanceInputSpace(InputSpace):
    """An :class:`InputSpace` whose raw rows carry ``n_nuisance`` more columns, U[−1, 1], after the
    encoded ones; features may read them (noise draws), the network never sees them."""

    n_nuisance: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_nuisance < 0:
            raise ValueError(f"n_nuisance must be ≥ 0, got {self.n_nuisance}")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        z = super().sample(rng, n)
        return np.concatenate([z, rng.uniform(-1.0, 1.0, size=(n, self.n_nuisance))], axis=1)

    def encode(self, z: np.ndarray) -> np.ndarray:
        return super().encode(z[:, :self.n_raw])


def f1_feature() -> Feature:
    return Feature("F1=σ(A+B)", sigmoid(linear({0: 1.0, 1: 1.0})).fn)


def f2_feature() -> Feature:
    return Feature("F2=σ(A−B)", sigmoid(linear({0: 1.0, 1: -1.0})).fn)


def noisy_feature(i: int, letter: str, noise: float) -> Feature:
    """EF = (variable i) + noise·U[−1, 1] (nuisance column 2 + i), mapped from [−5−s, 5+s] onto [0, 1]."""
    span = 2 * (RANGE + noise)
    f = linear({i: 1.0 / span, 2 + i: noise / span}, bias=(RANGE + noise) / span)
    return Feature(f"EF({letter})=[{letter}+{noise:g}·U]→[0,1]", f.fn)


@register_problem("inputs_as_outputs")
def inputs_as_outputs(variant: str = "out", extra: str = "F2", noise: float = 0.0, bits: int = 10) -> Problem:
    """CS97 F1 = σ(A+B) from 10-bit codes of A, B ~ U[−5, 5], with F2 = σ(A−B) or noisy EF(A), EF(B) as extra inputs or outputs."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {EXTRAS}, got {extra!r}")
    if noise < 0 or (extra == "F2" and noise != 0):
        raise ValueError("noise scale must be ≥ 0, and is only meaningful with extra='EF'")
    space = NuisanceInputSpace(n_vars=2, kind="uniform", low=-RANGE, high=RANGE,
                               encoding=BinaryCode(bits=bits, low=-RANGE, high=RANGE),
                               n_nuisance=2 if extra == "EF" else 0)
    f1 = f1_feature()
    extras = (f2_feature(),) if extra == "F2" else (noisy_feature(0, "A", noise), noisy_feature(1, "B", noise))
    names = ("F2",) if extra == "F2" else ("EF(A)", "EF(B)")
    features = {"A": var(0, "A"), "B": var(1, "B"), "F1": f1, **dict(zip(names, extras))}
    if variant == "in":
        return Problem(name="inputs_as_outputs", inputs=space, tasks=(Task("F1", f1, kind="real"),),
                       features=features, extra_inputs=extras, description=inputs_as_outputs.__doc__)
    tasks = (Task("F1", f1, kind="real"), *(Task(n, f, kind="real") for n, f in zip(names, extras)))
    return Problem(name="inputs_as_outputs", inputs=space, tasks=tasks, features=features,
                   extra_inputs=extras if variant == "both" else (), description=inputs_as_outputs.__doc__)


def _map_inputs(splits: Splits, fn) -> Splits:
    return Splits(*(dataclasses.replace(d, x=fn(d.x)) for d in (splits.train, splits.halt, splits.test)))


def _recode(x: np.ndarray, *, n_extra: int, signed: bool) -> np.ndarray:
    x = x.copy()
    if signed:
        x[:, :x.shape[1] - n_extra] = 2.0 * x[:, :x.shape[1] - n_extra] - 1.0
    x[:, x.shape[1] - n_extra:] = 0.0
    return x


def hide_extra_inputs(splits: Splits, rng=None, *, n_extra: int, signed: bool = False) -> Splits:
    """A :class:`~mtlmech.protocol.Condition` transform (bind ``n_extra`` with ``functools.partial``):
    the last ``n_extra`` input columns (the extra features of the ``"both"`` variant) set to 0 in
    every split; with ``signed`` the code bits also become ±1 (2·bit − 1)."""
    return _map_inputs(splits, lambda x: _recode(x, n_extra=n_extra, signed=signed))
