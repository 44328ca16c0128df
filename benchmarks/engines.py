"""Time per call of the gradient engines, side by side in one run.

For each model (`simples-conv`, the 28x28 CNN, and `simples-full`, the
784-100-10 MLP), k workers and b = 32 samples per worker, it measures:

- ``vmap``: `make_engine("vmap", ...).gradients(inputs, targets)`;
- ``grouped``: `make_engine("grouped", ...).gradients(...)` (one grouped-convolution /
  matrix-product pass for all workers);
- ``loop``: `make_engine("loop", ...).gradients(...)` (one autograd pass per worker);
- ``backprop``: the loop engine's former form, one `Model.backprop` per worker
  through an `experiments.Loss` wrapping the loss function (which builds a
  differentiable `torch.cat` of all parameters per worker), kept here to show
  what the direct autograd loop saves;
- ``limit``: one forward + backward over all k*b samples as a single batch,
  the "physical limit" any per-worker engine is compared to,

and prints the median time of each and the ratios vmap/limit, grouped/limit
and backprop/loop. They are timed interleaved (vmap, grouped, loop, backprop, limit,
...) after two warm-up rounds, so a busy machine slows them alike. Run:

    python benchmarks/engines.py            # k in {10, 25, 50}
    python benchmarks/engines.py --quick    # k = 10, fewer repeats
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import experiments  # noqa: E402
from simulator.core.engines import make_engine  # noqa: E402
from simulator.core.memory import keep_freed_memory  # noqa: E402

MODELS = ("simples-conv", "simples-full")


def build(name: str, device: torch.device):
    """The experiments.Model `name` (parameters in one flat vector)."""
    from experiments import Configuration, Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Model(name, Configuration(device=device, dtype=torch.float32))


def side_by_side_ms(calls: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall time of each call in milliseconds, measured interleaved after two warm-up rounds.

    Interleaving (a, b, c, a, b, c, ...) makes a busy machine slow every contender alike.
    """
    def timed(call) -> float:
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1000

    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(repeats + 2):
        for name, call in calls.items():
            elapsed = timed(call)
            if round_ >= 2:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def physical_limit(module: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor):
    """One forward + backward over all k*b samples in one batch."""
    flat_inputs, flat_targets = inputs.flatten(0, 1), targets.flatten()

    def call():
        module.zero_grad(set_to_none=False)
        F.cross_entropy(module(flat_inputs), flat_targets).backward()
    return call


def backprop_loop(model, inputs: torch.Tensor, targets: torch.Tensor):
    """The former loop engine: one `Model.backprop` per worker through `experiments.Loss(callable)`."""
    loss = experiments.Loss(lambda output, target, params: F.cross_entropy(output, target))

    def call():
        for i in range(inputs.shape[0]):
            model.backprop(experiments.Dataset((inputs[i], targets[i])), loss)
    return call


def measure(name: str, k: int, batch: int, repeats: int, device: torch.device) -> dict:
    model = build(name, device)
    generator = torch.Generator().manual_seed(k)
    inputs = torch.randn(k, batch, 1, 28, 28, generator=generator).to(device)
    targets = torch.randint(10, (k, batch), generator=generator).to(device)
    engines = {kind: make_engine(kind, model, F.cross_entropy) for kind in ("vmap", "grouped", "loop")}
    calls = {kind: (lambda e=engine: e.gradients(inputs, targets)) for kind, engine in engines.items()}
    calls["backprop"] = backprop_loop(model, inputs, targets)
    model.module.train()
    calls["limit"] = physical_limit(model.module, inputs, targets)
    return {"model": name, "k": k, **side_by_side_ms(calls, repeats, device)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="k = 10 only and fewer repeats")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per worker (default: 32)")
    parser.add_argument("--no-mallopt", action="store_true", help="leave glibc's malloc settings alone")
    args = parser.parse_args(argv)
    if not args.no_mallopt:
        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ks, repeats = ((10,), 3) if args.quick else ((10, 25, 50), 7)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"engines benchmark: b = {args.batch_size}, device {label}, torch {torch.__version__}, "
          f"median of {repeats} interleaved calls")
    print(f"{'model':<14}{'k':>4}{'vmap ms':>9}{'grouped':>9}{'loop ms':>9}{'backprop':>10}{'limit ms':>10}"
          f"{'vmap/limit':>11}{'grouped/limit':>14}{'backprop/loop':>15}")
    for name in MODELS:
        for k in ks:
            r = measure(name, k, args.batch_size, repeats, device)
            print(f"{r['model']:<14}{r['k']:>4}{r['vmap']:>9.1f}{r['grouped']:>9.1f}{r['loop']:>9.1f}"
                  f"{r['backprop']:>10.1f}{r['limit']:>10.1f}{r['vmap'] / r['limit']:>11.2f}"
                  f"{r['grouped'] / r['limit']:>14.2f}{r['backprop'] / r['loop']:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
