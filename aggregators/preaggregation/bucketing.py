"""Bucketing (Karimireddy, He & Jaggi, ICLR 2022, "Byzantine-robust learning on heterogeneous datasets via bucketing").

The vectors are randomly permuted and split into ceil(n/s) buckets of s
consecutive vectors (the last one may be smaller); each bucket is replaced by
its mean. A Byzantine vector contaminates only its own bucket, so the next rule
sees n' = ceil(n/s) vectors of which at most f' = min(f, n') are Byzantine (the
paper's bound: the Byzantine fraction grows from f/n to at most s f/n).
Randomised (seeded by the rule's generator).
"""
from __future__ import annotations

import math

import torch

from aggregators.base import PreAggregation, register


@register("bucketing")
class Bucketing(PreAggregation):
    """Average random buckets of s vectors; the next rule sees ceil(n/s) vectors (Karimireddy et al. 2022)."""

    randomised = True
    s: int = 2

    def validate(self) -> None:
        self.need(self.s >= 1, "s >= 1")

    def output_size(self, n: int, f: int) -> tuple[int, int]:
        buckets = math.ceil(n / self.s)
        return buckets, min(f, buckets)

    def transform(self, gradients: torch.Tensor, f: int) -> torch.Tensor:
        n = gradients.shape[0]
        perm = torch.randperm(n, generator=self.generator, device=self.generator.device).to(gradients.device)
        bucket_of_row = torch.empty_like(perm)
        bucket_of_row[perm] = torch.arange(n, device=gradients.device) // self.s
        out = torch.zeros(math.ceil(n / self.s), gradients.shape[1], dtype=gradients.dtype, device=gradients.device)
        out.index_add_(0, bucket_of_row, gradients)  # a non-finite row makes its own bucket non-finite
        sizes = torch.bincount(bucket_of_row, minlength=out.shape[0]).to(gradients.dtype)
        return out.div_(sizes[:, None])
