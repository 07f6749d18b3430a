"""Input distributions and the encodings that turn raw variables into network inputs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("bits", "uniform")


@dataclass(frozen=True)
class Identity:
    """Each raw variable is one input, unchanged."""

    def width(self) -> int:
        return 1

    def encode(self, z: np.ndarray) -> np.ndarray:
        return z[:, :, None]


@dataclass(frozen=True)
class BinaryCode:
    """A real variable on [low, high] cut into 2**bits equal bins; the inputs are the bin index's
    bits, most significant first (CS97's 10-bit code)."""

    bits: int = 10
    low: float = 0.0
    high: float = 1.0

    def width(self) -> int:
        return self.bits

    def bin_index(self, z: np.ndarray) -> np.ndarray:
        n_bins = 2 ** self.bits
        return np.clip(np.floor((z - self.low) / (self.high - self.low) * n_bins), 0, n_bins - 1).astype(np.int64)

    def encode(self, z: np.ndarray) -> np.ndarray:
        shifts = np.arange(self.bits - 1, -1, -1)
        return ((self.bin_index(z)[..., None] >> shifts) & 1).astype(np.float32)

    def decode(self, code: np.ndarray) -> np.ndarray:
        """Centre of the bin each code names."""
        index = (code.astype(np.int64) << np.arange(self.bits - 1, -1, -1)).sum(axis=-1)
        return self.low + (index + 0.5) * (self.high - self.low) / 2 ** self.bits


@dataclass(frozen=True)
class ThermometerCode:
    """A real variable on [low, high] as ``units`` inputs; unit i is on when the value exceeds the
    i-th of ``units`` equally spaced thresholds inside the interval."""

    units: int = 10
    low: float = 0.0
    high: float = 1.0

    def width(self) -> int:
        return self.units

    def thresholds(self) -> np.ndarray:
        return self.low + (np.arange(self.units) + 1) * (self.high - self.low) / (self.units + 1)

    def encode(self, z: np.ndarray) -> np.ndarray:
        return (z[..., None] > self.thresholds()).astype(np.float32)

    def decode(self, code: np.ndarray) -> np.ndarray:
        """Centre of the interval between the thresholds the code lies in."""
        edges = np.concatenate([[self.low], self.thresholds(), [self.high]])
        k = code.sum(axis=-1).astype(np.int64)
        return (edges[k] + edges[k + 1]) / 2


@dataclass(frozen=True)
class InputSpace:
    """``n_vars`` raw variables (independent bits, or uniform reals on [low, high]) plus
    ``n_irrelevant`` more of the same kind that no feature reads, each encoded by ``encoding``."""

    n_vars: int
    kind: str = "bits"
    low: float = 0.0
    high: float = 1.0
    encoding: Identity | BinaryCode | ThermometerCode = Identity()
    n_irrelevant: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"input kind must be one of {KINDS}, got {self.kind!r}")
        if self.n_vars < 1 or self.n_irrelevant < 0:
            raise ValueError(f"impossible input space: {self.n_vars} variables, {self.n_irrelevant} irrelevant")
        if self.kind == "uniform" and not self.high > self.low:
            raise ValueError("uniform inputs need high > low")

    @property
    def n_raw(self) -> int:
        return self.n_vars + self.n_irrelevant

    @property
    def n_inputs(self) -> int:
        return self.n_raw * self.encoding.width()

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Raw variables (n, n_vars + n_irrelevant); irrelevant ones are the last columns."""
        if self.kind == "bits":
            return rng.integers(0, 2, size=(n, self.n_raw)).astype(np.float64)
        return rng.uniform(self.low, self.high, size=(n, self.n_raw))

    def encode(self, z: np.ndarray) -> np.ndarray:
        """Network inputs (n, n_inputs), variable by variable."""
        return self.encoding.encode(z).reshape(len(z), -1).astype(np.float32)
