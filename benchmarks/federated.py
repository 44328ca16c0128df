"""Cost of a federated round's local steps: the vmap and loop engines against the physical limit, side by side.

For m clients taking K local steps on batches of b samples, it times
`engine.local_updates` with the vmap engine (all clients' K steps in one
batched functional pass per step), the grouped engine (one grouped
convolution / batched matrix product per layer and step) and the loop engine
(one client after the other), and the limit: K forward + backward passes,
each over all m * b samples as one batch. Timed interleaved (vmap, grouped,
loop, limit, vmap, ...) after two warm-up rounds; medians are printed with
the ratios to the limit.

    python benchmarks/federated.py              # the MLP and the CNN, K = 5, m = 10, b = 32
    python benchmarks/federated.py --quick
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import Configuration, Model  # noqa: E402
from simulator.core.engines import make_engine  # noqa: E402
from simulator.core.memory import keep_freed_memory  # noqa: E402


def limit(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    """K forward + backward passes over all clients' samples of one local step at once."""
    steps = inputs.shape[1]
    flat_inputs = [inputs[:, k].flatten(0, 1) for k in range(steps)]
    flat_targets = [targets[:, k].flatten() for k in range(steps)]

    def call():
        for x, y in zip(flat_inputs, flat_targets):
            module.zero_grad(set_to_none=False)
            F.cross_entropy(module(x), y).backward()
    return call


def measure(name: str, clients: int, steps: int, batch: int, repeats: int) -> dict[str, float]:
    model = Model(name, Configuration(device="cpu"), init_seed=0)
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(clients, steps, batch, 1, 28, 28, generator=g)
    targets = torch.randint(10, (clients, steps, batch), generator=g)
    engines = {kind: make_engine(kind, model, F.cross_entropy) for kind in ("vmap", "grouped", "loop")}
    calls = {kind: (lambda e=e: e.local_updates(inputs, targets, lr=0.05)) for kind, e in engines.items()}
    model.module.train()
    calls["limit"] = limit(model.module, inputs, targets)
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(repeats + 2):
        for kind, call in calls.items():
            start = time.perf_counter()
            call()
            if round_ >= 2:
                times[kind].append(time.perf_counter() - start)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the MLP only, 3 repeats")
    parser.add_argument("--clients", type=int, default=10, help="clients m per round (default: 10)")
    parser.add_argument("--steps", type=int, default=5, help="local steps K (default: 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples b per local step (default: 32)")
    args = parser.parse_args()
    keep_freed_memory()
    models, repeats = (("simples-full",), 3) if args.quick else (("simples-full", "simples-conv"), 7)
    print(f"# local steps of a round: m = {args.clients}, K = {args.steps}, b = {args.batch_size}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; median of {repeats} interleaved calls, ms")
    print(f"{'model':<14}{'vmap':>9}{'grouped':>9}{'loop':>9}{'limit':>9}{'vmap/limit':>12}{'grouped/limit':>15}"
          f"{'loop/limit':>12}")
    for name in models:
        t = measure(name, args.clients, args.steps, args.batch_size, repeats)
        print(f"{name:<14}{t['vmap']:>9.1f}{t['grouped']:>9.1f}{t['loop']:>9.1f}{t['limit']:>9.1f}"
              f"{t['vmap'] / t['limit']:>12.2f}{t['grouped'] / t['limit']:>15.2f}{t['loop'] / t['limit']:>12.2f}",
              flush=True)


if __name__ == "__main__":
    main()
