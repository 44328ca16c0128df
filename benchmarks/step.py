"""Whole-step benchmark: the simulator's step against a reference-style step
and against the physical limit, measured side by side in one run.

For each model (the 28x28 CNN `simples-conv` and the MLP `simples-full`),
n in {10, 25, 50} workers (f = n // 5 Byzantine), b = 32 and ALIE against krum
and median, it times:

- vmap: `Simulation.step()` with the vmap engine (sampling by index, batched
  gradients, vectorised attack and rule, flat update);
- loop: the same step with the loop engine (one autograd pass per worker);
- reference: a step written the usual way: one DataLoader per worker, one
  backward per worker, ALIE through `torch.std`, Krum's distances through a
  Python loop over pairs, a per-parameter optimizer step;
- limit: one forward + backward over the h * b honest samples as one batch,
  the least any step must do (a gradient attack computes nothing).

It prints milliseconds per step and the ratios. Data: real Fashion-MNIST when
Debian's dataset-fashion-mnist is installed, otherwise random 28x28 images
(speed does not depend on the pixels).

    python benchmarks/step.py            # the full table (a few minutes on 2 cores)
    python benchmarks/step.py --quick    # n = 10 only, fewer repeats
"""
from __future__ import annotations

import argparse
import itertools
import pathlib
import platform
import sys
import time

# Run as a script, this folder comes first on sys.path and benchmarks/aggregators.py would hide the package.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import simulator.simulation as simulation
from experiments import datasets
from experiments.tools import UserException
from simulator.config import Config
from simulator.memory import keep_freed_memory


def synthetic_if_missing() -> str:
    """The dataset to time on: Fashion-MNIST if present, else random 28x28 images registered as a dataset."""
    try:
        datasets.load_tensors("fashionmnist", False)
        return "fashionmnist"
    except UserException:
        def read(root, train, download):
            g = torch.Generator().manual_seed(int(train))
            count = 6000 if train else 1000
            return torch.rand(count, 1, 28, 28, generator=g).numpy(), torch.randint(10, (count,), generator=g).numpy()

        datasets.REGISTRY.add("random28", datasets.Spec(name="random28", description="random 28x28 images",
                                                        num_classes=10, read=read, stats=lambda: ((0.5,), (0.29,))))
        return "random28"


def timed(fn, repeats: int) -> float:
    """Median seconds per call of fn after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def reference_step(sim: simulation.Simulation, loaders: list, aggregator: str, f: int, z: float = 1.5) -> None:
    """A step the usual way, for comparison (deliberately unvectorised)."""
    module, h = sim.model.module, sim.config.nb_honest
    grads = []
    for i in range(h):  # one backward per worker, one DataLoader per worker
        x, y = next(loaders[i])
        module.zero_grad()
        F.cross_entropy(module(x), y).backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in module.parameters()]))
    honest = torch.stack(grads)
    byz = (honest.mean(dim=0) - z * honest.std(dim=0)).expand(f, -1)
    vectors = torch.cat([honest, byz])
    n = vectors.shape[0]
    if aggregator == "krum":
        dist = [[float((vectors[i] - vectors[j]).norm() ** 2) for j in range(n)] for i in range(n)]
        scores = [sum(sorted(dist[i][:i] + dist[i][i + 1:])[: n - f - 2]) for i in range(n)]
        aggregate = vectors[min(range(n), key=scores.__getitem__)]
    else:
        aggregate = vectors.median(dim=0).values
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            p.sub_(0.01 * aggregate[offset:offset + p.numel()].view_as(p))
            offset += p.numel()


def loaders_for(sim: simulation.Simulation) -> list:
    x, y = sim.sampler.inputs, sim.sampler.targets
    loaders = []
    for i, part in enumerate(sim.sampler.parts[: sim.config.nb_honest]):
        loader = DataLoader(TensorDataset(x[part], y[part]), batch_size=sim.config.batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(i), drop_last=True)
        loaders.append(itertools.cycle(loader))
    return loaders


def limit_step(sim: simulation.Simulation, h: int, b: int) -> callable:
    x, y = sim.sampler.inputs[: h * b], sim.sampler.targets[: h * b]
    module = sim.model.module

    def step():
        module.zero_grad()
        F.cross_entropy(module(x), y).backward()
    return step


def measure(dataset: str, model: str, n: int, aggregator: str, repeats: int) -> dict[str, float]:
    f, b = n // 5, 32
    base = dict(dataset=dataset, model=model, nb_workers=n, nb_decl_byz=f, batch_size=b, aggregator=aggregator,
                attack="alie", attack_args={"z": 1.5}, lr=0.01, output="/tmp/byzsim-bench")
    sims = {engine: simulation.Simulation(Config(**base, engine=engine)) for engine in ("vmap", "loop")}
    reference = sims["loop"]
    loaders = loaders_for(reference)
    return {
        "vmap": timed(sims["vmap"].step, repeats),
        "loop": timed(sims["loop"].step, repeats),
        "reference": timed(lambda: reference_step(reference, loaders, aggregator, f), repeats),
        "limit": timed(limit_step(reference, n - f, b), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 10 only, 3 repeats")
    args = parser.parse_args()
    keep_freed_memory()
    data = synthetic_if_missing()
    sizes, repeats = ((10,), 3) if args.quick else ((10, 25, 50), 7)
    print(f"# whole step, ms (median of {repeats}); torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; data: {data}")
    print(f"{'model':<13} {'n':>3} {'rule':<7} {'vmap':>8} {'loop':>8} {'refer.':>8} {'limit':>8} "
          f"{'vmap/limit':>10} {'ref/vmap':>9} {'loop/vmap':>9}")
    for model, n, aggregator in itertools.product(("simples-conv", "simples-full"), sizes, ("krum", "median")):
        t = measure(data, model, n, aggregator, repeats)
        ms = {k: 1000 * v for k, v in t.items()}
        print(f"{model:<13} {n:>3} {aggregator:<7} {ms['vmap']:>8.1f} {ms['loop']:>8.1f} {ms['reference']:>8.1f} "
              f"{ms['limit']:>8.1f} {t['vmap'] / t['limit']:>10.2f} {t['reference'] / t['vmap']:>9.2f} "
              f"{t['loop'] / t['vmap']:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
