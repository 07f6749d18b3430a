"""Problem families for data amplification (statistical, sampling, blocking), attribute selection and
eavesdropping (C95 §2, C97 §3.2). Bits are numbered from 0 in code; each family documents which
variables its shared feature F reads and which ones no task reads (irrelevant inputs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from .features import Feature, and_, linear, not_, or_, parity, threshold, var, xor
from .inputs import InputSpace
from .tasks import Dataset, Problem, Splits, Task, register_problem

# Sign patterns of the related tasks' weight vectors over the relevant inputs in
# ``attribute_selection``: row j is task j (T0 is the main task). Rows 0-3 are the 4×4 Hadamard
# rows (mutually orthogonal), row 4 is orthogonal to the main task's row. Orthogonal weights make
# the tasks' labels uncorrelated with T0's, so what a related task shares with T0 is which inputs
# matter, not the answer.
AS_WEIGHTS = ((1, 1, 1, 1), (1, -1, 1, -1), (1, 1, -1, -1), (1, -1, -1, 1), (1, -1, 0, 0))


def named(f: Feature, name: str) -> Feature:
    return Feature(name, f.fn)


def dnf3() -> Feature:
    """F = (x0 ∧ x1) ∨ (x2 ∧ x3) ∨ (x4 ∧ x5): a moderately hard boolean feature of six bits."""
    return named(or_(and_(var(0), var(1)), and_(var(2), var(3)), and_(var(4), var(5))), "F=(x0∧x1)∨(x2∧x3)∨(x4∧x5)")


@register_problem("amp_noisy_copies")
def noisy_copies(n_bits: int = 8, noise: float = 0.2) -> Problem:
    """Statistical amplification: T and T' both equal F = (x0∧x1)∨(x2∧x3)∨(x4∧x5), each with its own label flips.

    The flips are drawn independently per task and per row (train and halt sets); the test set is
    clean. Bits x6.. are read by nothing.
    """
    if n_bits < 6:
        raise ValueError(f"noisy_copies needs at least 6 bits, got {n_bits}")
    f = dnf3()
    return Problem(name="amp_noisy_copies", inputs=InputSpace(n_vars=6, n_irrelevant=n_bits - 6, kind="bits"),
                   tasks=(Task("T", f, noise=noise), Task("T'", f, noise=noise)), features={"F": f},
                   description=noisy_copies.__doc__.splitlines()[0])


@register_problem("amp_sampling_pair")
def sampling_pair() -> Problem:
    """Sampling amplification: T = F ∧ x6 and T' = F ∨ x7 with F = (x0∧x1)∨(x2∧x3)∨(x4∧x5); noise-free.

    T shows F only where x6 = 1, T' only where x7 = 0; the two windows are independent, so together
    they show F on 3/4 of the rows instead of 1/2.
    """
    f = dnf3()
    return Problem(name="amp_sampling_pair", inputs=InputSpace(n_vars=8, kind="bits"),
                   tasks=(Task("T", and_(f, var(6))), Task("T'", or_(f, var(7)))),
                   features={"F": f, "x6": var(6), "x7": var(7)},
                   description=sampling_pair.__doc__.splitlines()[0])


@register_problem("amp_readout_pair")
def readout_pair() -> Problem:
    """Sampling amplification (version 2): T = F ⊕ x6 and T' = F ⊕ x7 with F = (x0∧x1)∨(x2∧x3)∨(x4∧x5); noise-free.

    Both tasks read F on every row (no blocking: given x6, T determines F, and given x7, T' does),
    through different read-outs; neither is an easier route to F than the other (no eavesdropping).
    """
    f = dnf3()
    return Problem(name="amp_readout_pair", inputs=InputSpace(n_vars=8, kind="bits"),
                   tasks=(Task("T", xor(f, var(6))), Task("T'", xor(f, var(7)))),
                   features={"F": f, "x6": var(6), "x7": var(7)},
                   description=readout_pair.__doc__.splitlines()[0])


def copy_labels(data: Dataset, source: int, targets: Sequence[int]) -> Dataset:
    """A copy of ``data`` whose target columns ``targets`` (noisy and clean targets and the loss
    mask) are replaced by column ``source``: the copies carry exactly the source's label noise."""
    y, y_clean, mask = data.y.copy(), data.y_clean.copy(), data.mask.copy()
    for a in (y, y_clean, mask):
        a[:, list(targets)] = a[:, [source]]
    return dataclasses.replace(data, y=y, y_clean=y_clean, mask=mask)


def same_labels_as(problem: Problem, main: str, copies: Sequence[str]) -> Callable[[Splits, np.random.Generator], Splits]:
    """A ``Condition.transform``: the tasks ``copies`` are trained (and halted) on ``main``'s own
    labels, noise included, on the training and halt sets (test rows are untouched). The
    "same-noise" control: an MTL net with as many outputs and the same gradient scale as the MTL
    condition, whose extra outputs carry no information that the main task's labels do not."""
    source, targets = problem.task_index(main), [problem.task_index(t) for t in copies]
    if not targets or source in targets:
        raise ValueError(f"same_labels_as needs copies other than the main task {main!r}, got {copies}")

    def transform(s: Splits, rng: np.random.Generator) -> Splits:
        return dataclasses.replace(s, train=copy_labels(s.train, source, targets), halt=copy_labels(s.halt, source, targets))

    transform.__name__ = f"same_labels_as({main}->{','.join(copies)})"
    return transform


@register_problem("amp_blocking_pair")
def blocking_pair(n_bits: int = 8, parity_bits: tuple[int, ...] = (1, 2, 3)) -> Problem:
    """Blocking amplification (C95): T = A ∨ F, T' = ¬A ∨ F, A = x0, F = parity of ``parity_bits``; noise-free.

    Where A = 1, T is 1 whatever F is; where A = 0, T' is. Bits other than A and F's are irrelevant.
    """
    if not parity_bits or min(parity_bits) < 1 or max(parity_bits) >= n_bits or len(set(parity_bits)) != len(parity_bits):
        raise ValueError(f"blocking_pair needs distinct parity bits within 1..{n_bits - 1} (x0 is A), got {parity_bits}")
    a = named(var(0), "A")
    f = named(parity(parity_bits), f"F=parity({','.join(f'x{i}' for i in parity_bits)})")
    return Problem(name="amp_blocking_pair", inputs=InputSpace(n_vars=n_bits, kind="bits"),
                   tasks=(Task("T", or_(a, f)), Task("T'", or_(not_(a), f))), features={"A": a, "F": f},
                   description=blocking_pair.__doc__.splitlines()[0])


@register_problem("attribute_selection")
def attribute_selection(n_relevant: int = 4, n_irrelevant: int = 16, n_related: int = 4, noise: float = 0.0,
                        related: str = "copies") -> Problem:
    """Attribute selection: T0 = F = [z0 + z1 + z2 + z3 > 0] reads 4 of many uniform inputs on [−1, 1].

    ``n_irrelevant`` more uniform inputs are read by no task. Related tasks T1..T_n_related:
    ``related="copies"``: each equals F (C95's shared feature) with its own label noise;
    ``related="orthogonal"``: T_j = [w_j · z0..3 > 0] with the sign patterns ``AS_WEIGHTS[j]``, which
    share only which inputs matter. Every task carries independent label flips with probability ``noise``.
    """
    if n_relevant != len(AS_WEIGHTS[0]):
        raise ValueError(f"attribute_selection has weight patterns for {len(AS_WEIGHTS[0])} relevant inputs")
    if not 0 <= n_related < len(AS_WEIGHTS):
        raise ValueError(f"n_related must be in 0..{len(AS_WEIGHTS) - 1}, got {n_related}")
    if related not in ("copies", "orthogonal"):
        raise ValueError(f"related must be 'copies' or 'orthogonal', got {related!r}")

    def target(j: int) -> Feature:
        w = AS_WEIGHTS[0 if related == "copies" else j]
        return named(threshold(linear(dict(enumerate(map(float, w)))), 0.0), f"[{w}·z0..3 > 0]")
    tasks = tuple(Task(f"T{j}", target(j), noise=noise) for j in range(n_related + 1))
    return Problem(name="attribute_selection",
                   inputs=InputSpace(n_vars=n_relevant, n_irrelevant=n_irrelevant, kind="uniform", low=-1.0, high=1.0),
                   tasks=tasks, features={"F": target(0)}, description=attribute_selection.__doc__.splitlines()[0])


@register_problem("eavesdropping")
def eavesdropping(route: str = "hint", n_bits: int = 10) -> Problem:
    """Eavesdropping: F = majority(x0..x4) is easy through T and hard through T' = F ⊕ x5 ⊕ x6.

    ``route="hint"``: T = F itself (a catalytic hint); ``route="task"``: T = F ∨ x7, a task that uses
    F simply. T' is uncorrelated with F, x5 and x6 separately (and with any two of them), so its own
    error gradient carries no low-order signal about F. Bits x8.. are read by nothing.
    """
    if route not in ("hint", "task"):
        raise ValueError(f"route must be 'hint' or 'task', got {route!r}")
    if n_bits < 8:
        raise ValueError(f"eavesdropping needs at least 8 bits, got {n_bits}")
    f = named(threshold(linear({i: 1.0 for i in range(5)}), 2.5), "F=majority(x0..x4)")
    t = f if route == "hint" else or_(f, var(7))
    return Problem(name="eavesdropping", inputs=InputSpace(n_vars=8, n_irrelevant=n_bits - 8, kind="bits"),
                   tasks=(Task("T", t), Task("T'", xor(f, var(5), var(6)))), features={"F": f},
                   description=eavesdropping.__doc__.splitlines()[0])
