"""Per-step diagnostics, computed from the honest vectors and the aggregate.

All vectorised over the [h, d] honest matrix. The variance is computed in two
passes (deviations from the mean, then squares), which stays accurate when
the gradients nearly agree, without a float64 copy of the matrix.
"""
from __future__ import annotations

import math

import torch

METRIC_COLUMNS = (
    "step", "lr", "train_loss", "honest_norm", "honest_variance", "variance_norm_ratio",
    "aggregate_distance", "aggregate_cosine", "aggregate_norm", "step_time",
)
EVAL_COLUMNS = ("step", "accuracy", "test_loss")


def step_metrics(honest: torch.Tensor, aggregate: torch.Tensor) -> dict[str, float]:
    """Statistics of one step.

    honest_norm: norm of the honest mean; honest_variance: mean squared
    distance of the honest vectors to their mean; the ratio of the two (the
    quantity ALIE-style attacks exploit); distance, cosine and norm of the
    aggregate relative to the honest mean.
    """
    mean = honest.mean(dim=0)
    variance = (honest - mean).square_().sum(dim=1).mean().item() if honest.shape[0] > 1 else 0.0
    norm = mean.norm().item()
    agg = aggregate.to(mean.dtype)
    agg_norm = agg.norm().item()
    finite = math.isfinite(agg_norm)
    cosine = (agg @ mean).item() / (agg_norm * norm) if finite and agg_norm > 0 and norm > 0 else float("nan")
    return {
        "honest_norm": norm,
        "honest_variance": variance,
        "variance_norm_ratio": variance / norm**2 if norm > 0 else float("inf"),
        "aggregate_distance": (agg - mean).norm().item(),
        "aggregate_cosine": cosine,
        "aggregate_norm": agg_norm,
    }
