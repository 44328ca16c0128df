"""Per-step diagnostics, and what the honest workers' data looks like.

The step metrics are vectorised over the [h, d] honest matrix and leave the
device in one transfer (a GPU step never waits on the host mid-step). The
variance is computed in two passes (deviations from the mean, then squares),
which stays accurate when the gradients nearly agree, without a float64 copy
of the matrix.
"""
from __future__ import annotations

import math
import statistics

import torch

METRIC_COLUMNS = (
    "step", "lr", "train_loss", "honest_norm", "honest_variance", "variance_norm_ratio",
    "aggregate_distance", "aggregate_cosine", "aggregate_norm", "byzantine_selected", "step_time",
)
# Federated rounds: `lr` is the clients' local step size in force, `server_lr` the server optimiser's.
FEDERATED_COLUMNS = (*METRIC_COLUMNS[:2], "server_lr", *METRIC_COLUMNS[2:])
EVAL_COLUMNS = ("step", "accuracy", "test_loss", "val_accuracy", "val_loss")  # val_*: empty without a validation set


def step_metrics(losses: torch.Tensor, honest: torch.Tensor, aggregate: torch.Tensor) -> dict[str, float]:
    """Statistics of one step.

    train_loss: mean honest loss; honest_norm: norm of the honest mean;
    honest_variance: mean squared distance of the honest vectors to their mean;
    the ratio of the two (the quantity ALIE-style attacks exploit); distance,
    cosine and norm of the aggregate relative to the honest mean.
    """
    mean = honest.mean(dim=0)
    agg = aggregate.to(mean.dtype)
    variance = (honest - mean).square_().sum(dim=1).mean() if honest.shape[0] > 1 else mean.new_zeros(())
    values = torch.stack([losses.mean().to(mean.dtype), mean.norm(), variance, agg.norm(), (agg - mean).norm(),
                          agg @ mean])
    loss, norm, variance, agg_norm, distance, dot = values.tolist()  # the one host transfer of a step
    finite = math.isfinite(agg_norm)
    return {
        "train_loss": loss,
        "honest_norm": norm,
        "honest_variance": variance,
        "variance_norm_ratio": variance / norm**2 if norm > 0 else float("inf"),
        "aggregate_distance": distance,
        "aggregate_cosine": dot / (agg_norm * norm) if finite and agg_norm > 0 and norm > 0 else float("nan"),
        "aggregate_norm": agg_norm,
    }


def data_summary(labels: torch.Tensor, parts: list[torch.Tensor], num_classes: int) -> dict:
    """What the honest workers hold: classes per worker (min, median, max) and each class's share held.

    ``parts`` are the honest workers' index tensors into ``labels``; the share of
    class c is the fraction of the training set's samples of class c that some
    honest worker holds (1.0 for every class when the data is split among the
    honest workers only).
    """
    labels = labels.cpu()
    per_worker = [int(torch.unique(labels[part]).numel()) for part in parts]
    held = torch.bincount(labels[torch.cat(parts)], minlength=num_classes).double()
    total = torch.bincount(labels, minlength=num_classes).double().clamp(min=1)
    return {
        "honest_workers": len(parts),
        "classes_per_honest_worker": {"min": min(per_worker), "median": statistics.median(per_worker),
                                      "max": max(per_worker)},
        "class_share_held_by_honest": [round(v, 6) for v in (held / total).tolist()],
        "samples_per_honest_worker": {"min": min(map(len, parts)), "max": max(map(len, parts))},
    }
