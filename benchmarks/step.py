"""Whole-step benchmark: the simulator's step against the physical limit and a reference-style step, side by side.

For each model (the 28x28 CNN `simples-conv` and the MLP `simples-full`),
n workers (f = n // 5 Byzantine), b = 32, ALIE (z = 1.5) with worker momentum
0.9 against krum, median and the trimmed mean, it times, interleaved on the
same data:

- vmap, grouped, loop: `Simulation.step()` with each engine (sampling by
  index, per-worker gradients, vectorised attack and rule, flat update);
- reference: a step written the usual way: one DataLoader per worker, one
  backward per worker, ALIE through `torch.std`, Krum's distances through a
  Python loop over pairs, `torch.median` / a sorted trimmed mean, a
  per-parameter update;
- limit: one forward + backward over the h * b honest samples as one batch,
  the least any step must do (a gradient attack computes nothing);
- pass: one pass over the [n, d] matrix of vectors (a clone): the least any
  rule must read.

It prints milliseconds per step and the ratios: each engine's step over the
limit, and the best step over (limit + pass). The fused coordinate-wise
kernels are used when they are built (`python -m aggregators.fused --build
--n N --f F`), which the header says. `--device cuda` runs the same table on
a GPU, and `--scaling` adds a row per n from 10 to 1,000 (the MLP and the
CNN, the vmap engine with its chunk size chosen to fit the device's memory):
step time and peak memory. Data: real Fashion-MNIST when Debian's
dataset-fashion-mnist is installed, otherwise random 28x28 images (speed does
not depend on the pixels).

    python benchmarks/step.py            # n in {10, 25, 50} (a few minutes on 2 cores)
    python benchmarks/step.py --quick    # n = 25 only, fewer repeats
    python benchmarks/step.py --device cuda --scaling
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

import simulator.core.simulation as simulation
from experiments import datasets
from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.memory import keep_freed_memory


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


def side_by_side(calls: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each call, timed interleaved (a, b, c, a, b, c, ...) after two warm-up rounds."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(repeats + 2):
        for name, call in calls.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            call()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if round_ >= 2:
                times[name].append(time.perf_counter() - start)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


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
    elif aggregator == "trmean":
        aggregate = vectors.sort(dim=0).values[f:n - f].mean(dim=0)
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


def measure(dataset: str, model: str, n: int, aggregator: str, repeats: int, device: str,
            engines: tuple[str, ...]) -> dict[str, float]:
    f, b = n // 5, 32
    base = dict(dataset=dataset, model=model, nb_workers=n, nb_decl_byz=f, batch_size=b, aggregator=aggregator,
                attack="alie(z=1.5)", momentum=0.9, momentum_at="worker", lr=0.01, device=device,
                output="/tmp/byzsim-bench")
    sims = {engine: simulation.Simulation(Config(**base, engine=engine)) for engine in engines}
    some = next(iter(sims.values()))
    vectors = torch.randn(n, some.model.get().numel(), device=some.device)
    calls = {engine: sim.step for engine, sim in sims.items()}
    if device == "cpu":
        loaders = loaders_for(some)
        calls["reference"] = lambda: reference_step(some, loaders, aggregator, f)
    calls["limit"] = limit_step(some, n - f, b)
    calls["pass"] = vectors.clone
    return side_by_side(calls, repeats, torch.device(device))


def scaling(dataset: str, model: str, device: str) -> None:
    """Step time and peak memory of the vmap engine for n from 10 to 1,000 (chunk size fitted to the memory)."""
    for n in (10, 30, 100, 300, 1000):
        config = Config(dataset=dataset, model=model, nb_workers=n, nb_decl_byz=n // 5, aggregator="median",
                        attack="alie(z=1.5)", batch_size=32, engine="vmap", device=device, output="/tmp/byzsim-bench")
        try:
            sim = simulation.Simulation(config)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = side_by_side({"step": sim.step}, 3, torch.device(device))["step"]
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
            chunk = getattr(sim.engine, "chunk_size", None)
            print(f"{model:<13} {n:>5} {1000 * seconds:>10.1f} {peak:>12.2f} {str(chunk):>8}", flush=True)
        except (UserException, RuntimeError) as err:  # e.g. out of memory
            print(f"{model:<13} {n:>5} {'failed':>10}: {str(err).splitlines()[0][:80]}", flush=True)


def header(device: str, repeats: int, data: str) -> str:
    from aggregators import fused

    machine = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    return (f"# whole step, ms (median of {repeats} interleaved); torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {machine}; data: {data}; fused kernels: BYZSIM_FUSED={fused.mode()}, "
            f"{'in use' if fused.available() else 'not built (eager)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 25 only, 3 repeats")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--scaling", action="store_true", help="also n = 10..1000 with the vmap engine")
    args = parser.parse_args()
    keep_freed_memory()
    data = synthetic_if_missing()
    sizes, repeats = ((25,), 3) if args.quick else ((10, 25, 50), 7)
    print(header(args.device, repeats, data))
    print(f"{'model':<13} {'n':>3} {'rule':<7} {'vmap':>7} {'grouped':>8} {'loop':>7} {'refer.':>7} {'limit':>7} "
          f"{'pass':>6} {'vmap/lim':>9} {'grp/lim':>8} {'best/(lim+pass)':>16}")
    for model, n, aggregator in itertools.product(("simples-conv", "simples-full"), sizes,
                                                  ("krum", "median", "trmean")):
        t = {k: 1000 * v for k, v in measure(data, model, n, aggregator, repeats, args.device,
                                             ("vmap", "grouped", "loop")).items()}
        best = min(t["vmap"], t["grouped"], t["loop"])
        print(f"{model:<13} {n:>3} {aggregator:<7} {t['vmap']:>7.1f} {t['grouped']:>8.1f} {t['loop']:>7.1f} "
              f"{t.get('reference', float('nan')):>7.1f} {t['limit']:>7.1f} {t['pass']:>6.2f} "
              f"{t['vmap'] / t['limit']:>9.2f} {t['grouped'] / t['limit']:>8.2f} "
              f"{best / (t['limit'] + t['pass']):>16.2f}", flush=True)
    if args.scaling:
        print(f"\n{'model':<13} {'n':>5} {'step ms':>10} {'peak GiB':>12} {'chunk':>8}")
        for model in ("simples-full", "simples-conv"):
            scaling(data, model, args.device)


if __name__ == "__main__":
    main()
