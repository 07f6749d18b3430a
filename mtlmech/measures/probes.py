"""What a trained net learned: agreement with named features, hidden-unit sensitivities, sharing
between outputs, input-weight strength. Every function takes batched parameters (B, ...) and
returns one value per member (and task / hidden unit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..engine.nets import NetSpec, as_batched, forward

LABEL_MIXED = "mixed"


def agreement(outputs: torch.Tensor, reference: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Fraction of rows where thresholded outputs (B, n, K) agree with a boolean reference (n,) or
    (B, n): (B, K). On a probe set where alternatives A and B disagree, agreement with A is the
    share of the net's decisions that follow A."""
    ref = torch.as_tensor(np.asarray(reference), dtype=outputs.dtype, device=outputs.device)
    ref = ref.expand(outputs.shape[0], -1) if ref.dim() == 1 else ref
    return ((outputs > 0.5) == (ref[:, :, None] > 0.5)).to(outputs.dtype).mean(dim=1)


def classify(score: np.ndarray | float, *, first: str, second: str, threshold: float = 0.9) -> np.ndarray:
    """Label by agreement ``score`` with ``first`` on a probe set where ``first`` and ``second``
    disagree: ``first`` when score ≥ threshold, ``second`` when score ≤ 1 − threshold, else mixed."""
    if not 0.5 < threshold <= 1:
        raise ValueError("threshold must be in (0.5, 1]")
    score = np.asarray(score, dtype=np.float64)
    return np.where(score >= threshold, first, np.where(score <= 1 - threshold, second, LABEL_MIXED))


def hidden_sensitivity(spec: NetSpec, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over rows of |∂out_k/∂h_j| for the last hidden layer: (B, K, H)."""
    with torch.no_grad():
        acts = forward(spec, params, x)
        out = acts[-1]
        slope = out * (1 - out) if spec.output == "sigmoid" else torch.ones_like(out)   # (B, n, K)
        w = params[-2]                                                                   # (B, H, K)
        return torch.einsum("bnk,bhk->bkh", slope, w.abs()) / out.shape[1]


def ablation_sensitivity(spec: NetSpec, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over rows of |Δout_k| when hidden unit j of the last hidden layer is clamped to its
    mean activation over ``x``: (B, K, H). A second, non-gradient definition of reliance."""
    with torch.no_grad():
        acts = forward(spec, params, x)
        h, out = acts[-2], acts[-1]
        w, b = params[-2], params[-1]
        h_mean = h.mean(dim=1, keepdim=True)
        result = []
        for j in range(h.shape[2]):
            delta = (h_mean[:, :, j] - h[:, :, j]).unsqueeze(-1) * w[:, j, :].unsqueeze(1)   # (B, n, K)
            z = torch.baddbmm(b.unsqueeze(1), h, w) + delta
            new = torch.sigmoid(z) if spec.output == "sigmoid" else z
            result.append((new - out).abs().mean(dim=1))
        return torch.stack(result, dim=2)


def rank_correlation(sens: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation between every pair of outputs' sensitivity vectors:
    (B, K, H) → (B, K, K). Ties get their average rank."""
    ranks = torch.as_tensor(np.apply_along_axis(_average_ranks, 2, sens.detach().cpu().numpy()),
                            dtype=torch.float64)
    centred = ranks - ranks.mean(dim=2, keepdim=True)
    norm = centred.norm(dim=2, keepdim=True).clamp_min(1e-12)
    unit = centred / norm
    return unit @ unit.transpose(1, 2)


def _average_ranks(v: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata
    return rankdata(v)


def used_units(sens: torch.Tensor, fraction: float = 0.1) -> torch.Tensor:
    """Boolean (B, K, H): hidden units whose sensitivity is at least ``fraction`` of the output's
    largest one (a simple "which units does this output rely on" view)."""
    return sens >= fraction * sens.amax(dim=2, keepdim=True)


def input_weight_strength(params: list[torch.Tensor], relevant: Sequence[int]) -> torch.Tensor:
    """Ratio of mean ‖w_i‖ (input i's outgoing weights to the first hidden layer) over relevant
    inputs to the same mean over the other inputs: (B,). > 1 means relevant inputs are stronger."""
    norms = params[0].norm(dim=2)                       # (B, n_inputs)
    mask = torch.zeros(norms.shape[1], dtype=torch.bool, device=norms.device)
    mask[list(relevant)] = True
    if mask.all() or not mask.any():
        raise ValueError("need both relevant and irrelevant inputs")
    return norms[:, mask].mean(dim=1) / norms[:, ~mask].mean(dim=1)


def outputs_on(spec: NetSpec, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Outputs (B, n, K) of every member on ``x`` (shared (n, d) or per member (B, n, d))."""
    with torch.no_grad():
        return forward(spec, params, as_batched(x, params[0].shape[0]))[-1]
