"""Sharing between the outputs of one net, beyond :mod:`mtlmech.measures.probes`: Kendall's rank correlation
between sensitivity vectors (a check on Spearman) and averages of a pair statistic over groups of
task pairs (e.g. by the number of variables two tasks share, C97 Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def kendall_correlation(sens: torch.Tensor) -> torch.Tensor:
    """Kendall's τ-b between every pair of outputs' sensitivity vectors: (B, K, H) → (B, K, K).

    Built from the sign of every difference between two hidden units' sensitivities, so ties are
    handled as in τ-b (a constant vector gives 0 correlation with everything)."""
    s = sens.detach().to(torch.float64).cpu()
    h = s.shape[2]
    a, b = torch.triu_indices(h, h, offset=1)
    signs = torch.sign(s[:, :, a] - s[:, :, b])                 # (B, K, H(H−1)/2)
    norm = signs.abs().sum(dim=2).sqrt().clamp_min(1e-12)       # √(pairs not tied)
    unit = signs / norm[:, :, None]
    return unit @ unit.transpose(1, 2)


def pair_values(matrix: torch.Tensor, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Entries (i, j) of a batched (B, K, K) matrix: (B, n_pairs) numpy."""
    return matrix[:, torch.as_tensor(i), torch.as_tensor(j)].cpu().numpy()


def group_means(values: np.ndarray, groups: Sequence, keep: np.ndarray | None = None) -> dict:
    """Mean over pairs within each group, per member: {group: (B,)}; ``keep`` masks pairs first."""
    groups = np.asarray(groups)
    keep = np.ones(len(groups), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    return {g.item(): values[:, keep & (groups == g)].mean(axis=1) for g in np.unique(groups[keep])}
