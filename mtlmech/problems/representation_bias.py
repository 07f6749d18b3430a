"""Representation-bias constructions (C97 §3.2.4): T solvable through hidden feature A or B, T'
through A or C, with an equally good training fit either way and a knob that sets T's preference.

Features are XORs of two input bits (A = a1⊕a2, B = b1⊕b2, C = c1⊕c2 or b1⊕c2), so each needs
hidden units; ``n_irrelevant`` more bits are read by no task. Every bit enters the network as one
input line, ±1 times its scale. XOR features matter: with single-bit features a net trained where
A = B weights A and B equally and on the probe rows its answer is decided by the bias and the
irrelevant inputs ("mixed" for almost every seed; see constructions_tried in the experiment), while
an XOR is learned by escaping a plateau along whichever feature the initial weights favour, after
which the error is gone and the other feature stops growing: a genuine choice between minima.

Labels and masks (which rows each task learns from):
- T is labelled on rows where A = B (label A, which equals B there); T' on rows where A = C
  (label A = C). Training rows are drawn where A = B or A = C, so A is the only feature that fits
  both tasks; in STL a net sees only its own task's labelled rows.
- Probe rows: for T every pattern with A ≠ B, for T' every pattern with A ≠ C. Agreement of the
  thresholded output with A there is the continuous score (1 = follows A, 0 = follows B or C).

Families (each with the reasoning for or against C97's "tide" in experiment 2):

1. ``disjoint`` — A, B, C on six separate bits; knob k = input scale of both B bits (preference by
   *ease*: louder inputs get larger gradients, so B's plateau is escaped first). On T's rows A = B,
   so T's gradient feeds A-carrying units as much as B-carrying ones until T is fitted: T can only
   help T' towards A, never push it away. Expected: no tide; the A-attraction fades as k grows.
2. ``overlap`` — shared substrate: C = b1⊕c2 reuses B's first bit; knob k = scale of b2 only (B's
   private bit), so T' alone still faces two XORs of unit-scale bits (indifferent by symmetry).
   Hidden units that T builds for B carry b1, half of what C needs, so a T that moves towards B
   moves the shared layer towards C: a mechanism by which T' could "fall into C" (attraction by
   overlap rather than C97's repulsion from A; the data say which, if either, happens).
3. ``data`` — disjoint bits at unit scale; knob q = fraction of the rows where A ≠ B (these are
   rows where A = C ≠ B) that also label T, with B (preference by *data*). At q > 0 A no longer fits
   T's training set; once T has learned B its remaining error on those rows pushes the units it
   reads away from A — a second candidate for a tide, though A still correlates with T's labels.
   (At q = 1, T's labels are B on every trainable row: A is uncorrelated with T's target there and
   C anti-correlated, corr −0.5, on T's rows.)

Families 4 and 5 (version 2) keep every premise of experiment 2 — B and C on disjoint bits, T'
labelled exactly as in experiment 1 (so T' alone is indifferent by the A↔C symmetry), T decisive
alone (A is uncorrelated with T's target on T's rows, so B is T's only minimum) — and add a concrete
route to a tide: *suppression*. A hidden feature that varies on T's rows but does not predict T's
target is noise to T; T's gradient removes it from every unit T reads (∂L_T/∂h_j = w_Tj·δ_T, and
δ_T carries that variance). A feature that is constant on T's rows is invisible to T. So when A
varies on T's rows and C does not, T pushes shared units away from A and leaves C alone: T' is
pushed towards C by T's dislike of A, not drawn to C by anything T shares with it.

4. ``silent`` — T is labelled (with B) on the 16 patterns where c1 = c2 = 0: C's input lines are
   constant on T's rows, a1, a2, b1, b2 take every combination (A independent of B). T' labelled
   on A = C rows. Training rows: T's rows ∪ T''s rows (40 patterns).
5. ``fixed`` — the same with the weaker asymmetry of C's *value* fixed (C = 0, i.e. c1 = c2) on T's
   rows while its bits still move together: 32 T rows; training rows: T's ∪ T''s (48 patterns).
   Units that build C from c1, c2 still vary on T's rows (e.g. an OR unit), so the route is weaker.

For every family ``splits(rng, n_train)`` gives the training rows, a halt set (the held-out
trainable patterns; with every trainable pattern in training, the training rows themselves: there
is nothing else to hold out) and a "test" set (every trainable pattern: the error there says how
well a net fits each task's labelled rows).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from ..engine.resources import require_memory
from .tasks import Dataset, Splits

FAMILIES = ("disjoint", "overlap", "data", "silent", "fixed")
KNOBLESS = ("silent", "fixed")   # families without a preference knob (pref must be 1)
TASKS = ("T", "T'")


@dataclass(frozen=True)
class RBConstruction:
    """One construction: ``family``, T's preference knob ``pref`` (scale k of B's private bits for
    disjoint/overlap, exception fraction q for data) and the number of irrelevant bits."""

    family: str
    pref: float = 1.0
    n_irrelevant: int = 0

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "data" and not 0 <= self.pref <= 1:
            raise ValueError(f"data family: pref is a fraction q in [0, 1], got {self.pref}")
        if self.family in KNOBLESS and self.pref != 1:
            raise ValueError(f"{self.family} family has no knob: pref must be 1, got {self.pref}")
        if self.family != "data" and self.pref <= 0:
            raise ValueError(f"{self.family} family: pref is an input scale > 0, got {self.pref}")
        if self.n_irrelevant < 0:
            raise ValueError("n_irrelevant must be ≥ 0")
        n = self.n_relevant + self.n_irrelevant   # all_patterns() enumerates 2^n patterns as float64
        require_memory(2.0 ** n * n * 8, f"n_irrelevant={self.n_irrelevant}: the table of all 2^{n} input patterns")

    @property
    def bits(self) -> dict[str, tuple[int, int]]:
        """The two bits each feature XORs (bit 0..n_bits-1); a1 a2 b1 b2 then c1 c2 or c2 alone."""
        if self.family == "overlap":
            return {"A": (0, 1), "B": (2, 3), "C": (2, 4)}
        return {"A": (0, 1), "B": (2, 3), "C": (4, 5)}

    def bit_names(self) -> list[str]:
        """Input line names in order: a1 a2 b1 b2 (c1) c2, then x1.. for irrelevant bits."""
        names = ["a1", "a2", "b1", "b2", "c2"] if self.family == "overlap" else ["a1", "a2", "b1", "b2", "c1", "c2"]
        return names + [f"x{i + 1}" for i in range(self.n_irrelevant)]

    @property
    def n_relevant(self) -> int:
        return 5 if self.family == "overlap" else 6

    @property
    def n_bits(self) -> int:
        return self.n_relevant + self.n_irrelevant

    @property
    def n_inputs(self) -> int:
        return self.n_bits

    @property
    def exception_fraction(self) -> float:
        return self.pref if self.family == "data" else 0.0

    def scales(self) -> np.ndarray:
        s = np.ones(self.n_bits)
        if self.family == "disjoint":
            s[[2, 3]] = self.pref
        elif self.family == "overlap":
            s[3] = self.pref
        return s

    def describe(self) -> str:
        if self.family == "silent":
            return "silent: XOR features, T labelled B where c1=c2=0 (C's inputs constant on T's rows)"
        if self.family == "fixed":
            return "fixed: XOR features, T labelled B where C=0 (C's value constant on T's rows)"
        if self.family == "data":
            return f"data: XOR features, T labelled B on q={self.pref:g} of A≠B rows"
        which = "b1, b2" if self.family == "disjoint" else "b2; C = b1⊕c2"
        return f"{self.family}: XOR features, scale k={self.pref:g} on {which}"

    def feature(self, z: np.ndarray, name: str) -> np.ndarray:
        i, j = self.bits[name]
        return (z[:, i] > 0.5) != (z[:, j] > 0.5)

    def encode(self, z: np.ndarray) -> np.ndarray:
        """Network inputs (n, n_bits): each bit as ±1 times its scale."""
        return ((2 * z - 1) * self.scales()).astype(np.float32)

    def all_patterns(self) -> np.ndarray:
        n = self.n_bits
        return ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)

    def t_rows(self, z: np.ndarray) -> np.ndarray:
        """Rows on which T is labelled (before the data family's exceptions)."""
        if self.family == "silent":
            return (z[:, 4] < 0.5) & (z[:, 5] < 0.5)
        if self.family == "fixed":
            return ~self.feature(z, "C")
        return self.feature(z, "A") == self.feature(z, "B")

    def trainable(self, z: np.ndarray) -> np.ndarray:
        """Rows a training set may hold: T's rows or T''s (A = C); for the first three families
        A = B or A = C."""
        a = self.feature(z, "A")
        if self.family in KNOBLESS:
            return self.t_rows(z) | (a == self.feature(z, "C"))
        return (a == self.feature(z, "B")) | (a == self.feature(z, "C"))

    # -- the Problem interface the protocol needs (train_conditions, score_rows, unit_key) ------
    @property
    def task_names(self) -> list[str]:
        return list(TASKS)

    @property
    def n_tasks(self) -> int:
        return len(TASKS)

    def task_index(self, name: str) -> int:
        return TASKS.index(name)

    def fingerprint(self) -> str:
        """A hash of what this construction computes: its parameters and every pattern's inputs,
        targets, masks (exceptions drawn from a fixed stream) and features."""
        d = self.rows(self.all_patterns(), np.random.default_rng(0))
        digest = hashlib.sha256(json.dumps([self.family, self.pref, self.n_irrelevant]).encode())
        for a in (d.x, d.y, d.mask, *(d.features[k] for k in sorted(d.features))):
            digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def splits(self, rng: np.random.Generator, n_train: int | None) -> Splits:
        """Training rows (``n_train`` distinct trainable patterns drawn without replacement, or all
        of them when None), halt rows (the held-out trainable patterns; the training rows when
        nothing is held out) and test rows (every trainable pattern). The data family's exception
        rows are drawn once per seed over all trainable patterns, so a pattern is labelled the same
        way in every split."""
        z = self.all_patterns()
        z = z[self.trainable(z)]
        everything = self.rows(z, rng)
        if n_train is None:
            return Splits(train=everything, halt=everything, test=everything)
        if not 0 < n_train < len(z):
            raise ValueError(f"{self.family}: n_train must be in 1..{len(z) - 1} (trainable patterns, at least one "
                             f"held out for the halt set), got {n_train}")
        order = rng.permutation(len(z))
        train, halt = np.sort(order[:n_train]), np.sort(order[n_train:])
        return Splits(train=_take(everything, train), halt=_take(everything, halt), test=everything)

    # -- datasets -------------------------------------------------------------------------
    def rows(self, z: np.ndarray, rng: np.random.Generator | None = None) -> Dataset:
        """Targets (T: A where A = B, T': A where A = C) and masks; in the data family a fraction q
        of the A ≠ B rows also label T, with B (drawn from ``rng``; None = no exception rows)."""
        a, b, c = (self.feature(z, f) for f in "ABC")
        mask_t = self.t_rows(z)
        if self.exception_fraction > 0 and rng is not None:
            mask_t = mask_t | ((a != b) & (rng.random(len(z)) < self.exception_fraction))
        y = np.stack([b, c], axis=1).astype(np.float32)     # B on T's rows (= A where A = B), C on T''s
        mask = np.stack([mask_t, a == c], axis=1).astype(np.float32)
        return Dataset(z=z, x=self.encode(z), y=y, y_clean=y.copy(), mask=mask,
                       features={"A": a.astype(float), "B": b.astype(float), "C": c.astype(float)})

    def training_set(self, rng: np.random.Generator, n: int | None) -> Dataset:
        """``n`` distinct trainable patterns drawn uniformly without replacement, or every trainable
        pattern once when ``n`` is None ("training on all patterns")."""
        z = self.all_patterns()
        z = z[self.trainable(z)]
        if n is not None:
            if not 0 < n <= len(z):
                raise ValueError(f"{self.family}: n_train must be in 1..{len(z)} (trainable patterns), got {n}")
            z = z[np.sort(rng.choice(len(z), size=n, replace=False))]
        return self.rows(z, rng)

    def probe(self, task: str) -> Dataset:
        """Every pattern where the task's alternatives disagree (T: A ≠ B; T': A ≠ C); in the
        ``silent`` and ``fixed`` families T's probe stays inside T's domain (its rows: C's inputs or
        value fixed), since T never sees other values of C and its answer there says nothing about A
        or B."""
        z = self.all_patterns()
        other = "B" if task == "T" else "C"
        keep = self.feature(z, "A") != self.feature(z, other)
        if task == "T" and self.family in KNOBLESS:
            keep &= self.t_rows(z)
        z = z[keep]
        return self.rows(z, None)


def _take(d: Dataset, index: np.ndarray) -> Dataset:
    return Dataset(z=d.z[index], x=d.x[index], y=d.y[index], y_clean=d.y_clean[index], mask=d.mask[index],
                   features={k: v[index] for k, v in d.features.items()})
