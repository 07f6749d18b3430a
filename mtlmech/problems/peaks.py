"""C97's Peaks functions: 120 tasks IF (?1 > 1/2) THEN ?2 ELSE ?3 over six variables A–F on [0, 1].

Tasks are numbered P001 … P120 in lexicographic order of (test, then, else), the order C97 uses
(P001 = IF A THEN B ELSE C, P120 = IF F THEN E ELSE D). :func:`peaks_pairs` gives, for every pair of
tasks, how many variables they share and whether their test variable is the same: the two
groupings of C97's Figure 5.
"""

from __future__ import annotations

from itertools import combinations, permutations

import numpy as np

from .features import if_then_else, var
from .inputs import BinaryCode, InputSpace, ThermometerCode
from .tasks import Problem, Task, register_problem

LETTERS = "ABCDEF"
ENCODINGS = ("binary", "thermometer")
POSITIONS = ("test", "then", "else")   # the letters of a task (IF ?1 THEN ?2 ELSE ?3), in order


def peaks_triples() -> list[tuple[str, str, str]]:
    """(test, then, else) letters of P001 … P120, in C97's order."""
    return list(permutations(LETTERS, 3))


def peaks_name(index: int) -> str:
    """Task name of the 0-based ``index``: P001 … P120."""
    return f"P{index + 1:03d}"


def peaks_encoding(name: str, width: int = 10) -> BinaryCode | ThermometerCode:
    """The per-variable code: ``binary`` (``width``-bit bin index) or ``thermometer`` (``width`` units)."""
    if name == "binary":
        return BinaryCode(bits=width, low=0.0, high=1.0)
    if name == "thermometer":
        return ThermometerCode(units=width, low=0.0, high=1.0)
    raise ValueError(f"Peaks encoding must be one of {ENCODINGS}, got {name!r}")


@register_problem("peaks")
def peaks(encoding: str = "binary", width: int = 10) -> Problem:
    """C97 Peaks functions: 120 real-valued tasks IF ?1 > 1/2 THEN ?2 ELSE ?3 over A–F ~ U[0, 1].

    Each variable enters through ``width`` inputs (``encoding``: binary bin code or thermometer);
    targets are the raw variable values in [0, 1] (noise-free).
    """
    if width < 1:
        raise ValueError(f"Peaks encoding width must be ≥ 1, got {width}")
    variables = {letter: var(i, letter) for i, letter in enumerate(LETTERS)}
    tasks = tuple(Task(peaks_name(k), if_then_else(variables[t], variables[a], variables[b], at=0.5), kind="real")
                  for k, (t, a, b) in enumerate(peaks_triples()))
    return Problem(name="peaks", inputs=InputSpace(n_vars=6, kind="uniform", low=0.0, high=1.0,
                                                   encoding=peaks_encoding(encoding, width)),
                   tasks=tasks, features=variables, description=peaks.__doc__.splitlines()[0])


def peaks_pairs() -> dict[str, np.ndarray]:
    """Every unordered pair of tasks i < j: indices ``i``, ``j``, ``n_shared`` (variables the two
    tasks have in common, position ignored, 0–3) and whether the two tasks have the same variable in
    the IF (``test_match``), THEN (``then_match``) or ELSE (``else_match``) position."""
    triples = peaks_triples()
    i, j = np.array(list(combinations(range(len(triples)), 2))).T
    n_shared = np.array([len(set(triples[a]) & set(triples[b])) for a, b in zip(i, j)])
    out = {"i": i, "j": j, "n_shared": n_shared}
    for position, name in enumerate(POSITIONS):
        out[f"{name}_match"] = np.array([triples[a][position] == triples[b][position] for a, b in zip(i, j)])
    return out
