"""Attack costs at a realistic size, with side-by-side ratios (not a test).

    python benchmarks/attack_costs.py [h] [d]

Prints the time of one call of every gradient attack on [h, d] honest vectors
(default h = 20, d = 580000, about a ResNet-ish CIFAR model), and two
comparisons measured in the same run: the two-pass coordinate std against
``torch.std``, and the closed-form Min-Max scaling against the paper's
bisection (Shejwalkar & Houmansadr 2021, tolerance 1e-5).
"""
from __future__ import annotations

import pathlib
import statistics
import sys
import time

# Run as a script, this folder comes first on sys.path and benchmarks/aggregators.py would hide the package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import aggregators  # noqa: E402
import attacks  # noqa: E402
from attacks.base import AttackContext, DataAttack  # noqa: E402
from attacks.stats import coordinate_std, deviations  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def aggregator():
    """The coordinate-wise median, the rule the adaptive attacks tune against here."""
    return aggregators.get("median"), "aggregators.get('median')"


def paper_minmax(honest: torch.Tensor, tau: float = 1e-5) -> torch.Tensor:
    """Min-Max by the paper's bisection on gamma (their Algorithm 1, initial gamma 50)."""
    mean = honest.mean(dim=0)
    p = -honest.std(dim=0)
    bound = torch.cdist(honest, honest).max()
    gamma, step, good = 50.0, 50.0 / 2, 0.0
    while abs(good - gamma) > tau:
        if torch.cdist((mean + gamma * p)[None], honest).max() <= bound:
            good, gamma = gamma, gamma + step
        else:
            gamma = gamma - step
        step /= 2
    return mean + good * p


def main(h: int = 20, d: int = 580_000, f: int = 5) -> None:
    g = torch.Generator().manual_seed(0)
    honest = torch.randn(h, d, generator=g)
    agg, agg_name = aggregator()
    own = torch.randn(f, d, generator=g)
    ctx = AttackContext(nb_workers=h + f, decl_f=f, aggregator=agg,
                        generator=torch.Generator().manual_seed(1), own_gradients=own)
    print(f"h = {h}, d = {d}, f = {f}, torch threads = {torch.get_num_threads()}, aggregator: {agg_name}")
    for name in attacks.names():
        attack = attacks.get(name)
        if isinstance(attack, DataAttack):
            continue
        print(f"  {name:9s} {timed(lambda: attack(honest, f, ctx), repeat=3):9.1f} ms")
    two_pass = timed(lambda: coordinate_std(deviations(honest)[1], consume=True))
    builtin = timed(lambda: torch.std(honest, dim=0))
    print(f"coordinate std: two-pass {two_pass:.1f} ms, torch.std {builtin:.1f} ms "
          f"(torch.std / two-pass = {builtin / two_pass:.1f}x)")
    closed = timed(lambda: attacks.get("minmax")(honest, f, ctx), repeat=3)
    bisect = timed(lambda: paper_minmax(honest), repeat=3)
    print(f"minmax: closed form {closed:.1f} ms, paper bisection {bisect:.1f} ms "
          f"(bisection / closed form = {bisect / closed:.1f}x)")
    stacked = torch.cat([honest, own])
    one = timed(lambda: agg.trial(stacked, f), repeat=3)
    opt = timed(lambda: attacks.get("opt-alie")(honest, f, ctx), repeat=3)
    print(f"opt-alie (16 evaluations): {opt:.1f} ms = {opt / one:.1f} aggregations of {one:.1f} ms")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
