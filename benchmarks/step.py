"""Whole-step benchmark: every built-in model's step, with the default engine, against the physical limit.

For every model of the catalogue (the `simples-*` and `reference-*` models and
torchvision's resnet18), n workers (f = n // 5 Byzantine), b = 32, ALIE
(z = 1.5) with worker momentum 0.9 against the median (``--rules`` for more),
it times, interleaved on the same data:

- step: `Simulation.step()` with no engine named, i.e. the default engine
  ``fastest``; the row names the engine it resolved to (from the model's
  layers and the device), and the fused kernel the rule ran on;
- auto: the same step with ``auto``, the default before ``fastest`` (only
  where the two resolve to different engines);
- reference (CPU): a step written the usual way: one DataLoader per worker,
  one backward per worker, ALIE through `torch.std`, the rule on plain torch
  calls, a per-parameter update;
- limit: one forward + backward over the h * b honest samples as one batch,
  the least any step must do (a gradient attack computes nothing);
- pass: one pass over the [n, d] matrix of vectors, the least any rule must
  read: warm (a copy into a buffer written before) and cold (a clone: new
  memory, page faults included).

It prints milliseconds per step and the ratios: step / limit, the target for
convolutional models, and step / (limit + warm pass), the target for MLPs.
torchvision models run at n = 5 (``--small``) whatever ``--sizes`` says.
Before timing, the fused coordinate-wise kernels the rules need are asked for
as a run asks for them (``BYZSIM_FUSED`` unset: built in the background on
first use, once per machine); the header says which kernels this run had to
build and how long each took, or that the cache had them. `--device cuda` runs
the same table on a GPU, and `--scaling` adds a row per n from 10 to 1,000
(the MLP and the CNN, the default engine with its chunk size chosen to fit the
device's memory): step time and peak memory. Data: real Fashion-MNIST when
Debian's dataset-fashion-mnist is installed, otherwise random 28x28 images;
random 32x32 colour images for the CIFAR-shaped models (speed does not
depend on the pixels).

    python benchmarks/step.py            # every model at n = 25, 7 repeats
    python benchmarks/step.py --quick    # 3 repeats
    python benchmarks/step.py --models simples-conv simples-full --sizes 10 25 50 --rules median krum trmean
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

import aggregators
import simulator.core.simulation as simulation
from aggregators import fused
from experiments import datasets, models
from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.memory import keep_freed_memory

TORCHVISION = ("resnet18",)  # one torchvision model: batch norm, residual blocks, 11M parameters
SHAPES = {"simples-digits": "digits", "simples-cifar": "32x32", "resnet18": "32x32"}  # the others: 28x28
# rule -> the fused kernel it runs at (n, f): (statistic, trim, kept), or None for a rule without one
KERNELS = {"median": lambda n, f: (fused.MEDIAN, 0, 1), "trmean": lambda n, f: (fused.TRIMMED_MEAN, f, 1),
           "meamed": lambda n, f: (fused.CLOSEST_TO_MEDIAN, 0, n - f)}


def catalogue() -> list[str]:
    """Every built-in model, then the torchvision ones timed here."""
    return [*models.names(), *TORCHVISION]


def _random(name: str, shape: tuple[int, ...]) -> str:
    """Register (once) a dataset of random images of ``shape`` under ``name``."""
    if name not in datasets.REGISTRY:
        def read(root, train, download):
            g = torch.Generator().manual_seed(int(train))
            count = 6000 if train else 1000
            return torch.rand(count, *shape, generator=g).numpy(), torch.randint(10, (count,), generator=g).numpy()

        datasets.REGISTRY.add(name, datasets.Spec(name=name, description=f"random {shape} images", num_classes=10,
                                                  read=read, stats=lambda: ((0.5,) * shape[0], (0.29,) * shape[0])))
    return name


def data_for(model: str) -> str:
    """The dataset to time ``model`` on: its own shape of input, real where installed."""
    shape = SHAPES.get(model, "28x28")
    if shape == "digits":
        return "digits"
    real = "fashionmnist" if shape == "28x28" else "cifar10"
    try:
        datasets.load_tensors(real, False)
        return real
    except UserException:
        return _random("random28", (1, 28, 28)) if shape == "28x28" else _random("random32", (3, 32, 32))


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


def config_of(model: str, n: int, aggregator: str, b: int, device: str, **changes) -> Config:
    return Config(dataset=data_for(model), model=model, nb_workers=n, nb_decl_byz=n // 5, batch_size=b,
                  aggregator=aggregator, attack="alie(z=1.5)", momentum=0.9, momentum_at="worker", lr=0.01,
                  device=device, output="/tmp/byzsim-bench", **changes)


def kernel_in_use(aggregator: str, n: int, f: int, device: str) -> str:
    """The fused kernel the rule runs on now (specialised, generic, eager), or '-' for a rule without one."""
    if aggregator not in KERNELS:
        return "-"
    if device != "cpu":
        return "eager"  # the kernels are CPU code
    return fused.available(torch.float32, n, *KERNELS[aggregator](n, f)) or "eager"


def prepare_kernels(rows: list[tuple[str, int, str]]) -> str:
    """Ask for the kernels the rules need, as a run does, and wait for their builds; what happened, in a line."""
    started = time.perf_counter()
    for _, n, aggregator in rows:
        if aggregator in KERNELS:
            aggregators.get(aggregator)(torch.randn(n, fused.WORTH_A_BUILD), n // 5)
    fused.wait()
    return f"{fused.summary()}; all ready {time.perf_counter() - started:.1f} s after the first call"


def measure(model: str, n: int, aggregator: str, repeats: int, device: str, b: int,
            reference: bool) -> tuple[dict[str, float], dict[str, str]]:
    """Milliseconds of each call, and what ran: the default engine's name and the rule's kernel."""
    f = n // 5
    sim = simulation.Simulation(config_of(model, n, aggregator, b, device))
    calls, names = {"step": sim.step}, {"engine": sim.workers.name}
    previous = simulation.Simulation(config_of(model, n, aggregator, b, device, engine="auto"))
    if previous.workers.name != sim.workers.name:
        calls["auto"] = previous.step
    names["auto"] = previous.workers.name
    vectors = torch.randn(n, sim.model.get().numel(), device=sim.device)
    buffer = torch.empty_like(vectors)
    if device == "cpu" and reference:
        loaders = loaders_for(sim)
        calls["reference"] = lambda: reference_step(sim, loaders, aggregator, f)
    calls["limit"] = limit_step(sim, n - f, b)
    calls["warm pass"] = lambda: buffer.copy_(vectors)
    calls["cold pass"] = vectors.clone
    times = {k: 1000 * v for k, v in side_by_side(calls, repeats, torch.device(device)).items()}
    times.setdefault("auto", times["step"])
    names["kernel"] = kernel_in_use(aggregator, n, f, device)
    return times, names


def scaling(model: str, device: str) -> None:
    """Step time and peak memory of the default engine for n from 10 to 1,000 (chunk size fitted to the memory)."""
    for n in (10, 30, 100, 300, 1000):
        config = Config(dataset=data_for(model), model=model, nb_workers=n, nb_decl_byz=n // 5, aggregator="median",
                        attack="alie(z=1.5)", batch_size=32, device=device, output="/tmp/byzsim-bench")
        try:
            sim = simulation.Simulation(config)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = side_by_side({"step": sim.step}, 3, torch.device(device))["step"]
            peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
            chunk = getattr(sim.engine, "chunk_size", None)
            print(f"{model:<24} {n:>5} {sim.workers.name:>8} {1000 * seconds:>10.1f} {peak:>12.2f} {str(chunk):>8}",
                  flush=True)
        except (UserException, RuntimeError) as err:  # e.g. out of memory
            print(f"{model:<24} {n:>5} {'failed':>10}: {str(err).splitlines()[0][:80]}", flush=True)


def header(device: str, repeats: int) -> str:
    machine = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    return (f"# whole step, ms (median of {repeats} interleaved); torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {machine}; engine: the default ({Config().engine}), resolved per "
            f"model below")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--models", nargs="+", default=None, help="default: every built-in model and resnet18")
    parser.add_argument("--sizes", nargs="+", type=int, default=[25], help="numbers of workers n (default: 25)")
    parser.add_argument("--small", type=int, default=5, help="n for the torchvision models (default: 5)")
    parser.add_argument("--rules", nargs="+", default=["median"], help="aggregators (default: median)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-reference", action="store_true", help="leave out the reference-style step")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--scaling", action="store_true", help="also n = 10..1000 with the default engine")
    args = parser.parse_args(argv)
    keep_freed_memory()
    repeats = 3 if args.quick else 7
    chosen = args.models or catalogue()
    rows = [(model, n, rule) for model in chosen
            for n in ([min(args.small, *args.sizes)] if model in TORCHVISION else args.sizes) for rule in args.rules]
    print(header(args.device, repeats))
    print(f"# fused kernels: {prepare_kernels(rows) if args.device == 'cpu' else 'CPU only; eager on this device'}")
    print(f"# data: {', '.join(sorted({data_for(model) for model in chosen}))}; pass: warm = a copy into a buffer "
          f"written before, cold = a clone (new memory)")
    print(f"{'model':<24} {'n':>3} {'rule':<7} {'engine':<8} {'kernel':<11} {'step':>8} {'auto':>8} {'refer.':>8} "
          f"{'limit':>8} {'warm':>6} {'cold':>6} {'step/lim':>9} {'step/(lim+warm)':>16} {'auto/step':>10}")
    for model, n, aggregator in rows:
        try:
            t, what = measure(model, n, aggregator, repeats, args.device, args.batch_size, not args.no_reference)
        except (UserException, RuntimeError) as err:
            print(f"{model:<24} {n:>3} {aggregator:<7} failed: {str(err).splitlines()[0][:90]}", flush=True)
            continue
        auto = f"{t['auto']:>8.1f}" if what["auto"] != what["engine"] else f"{'= ' + what['auto']:>8}"
        print(f"{model:<24} {n:>3} {aggregator:<7} {what['engine']:<8} {what['kernel']:<11} {t['step']:>8.1f} {auto} "
              f"{t.get('reference', float('nan')):>8.1f} {t['limit']:>8.1f} {t['warm pass']:>6.2f} "
              f"{t['cold pass']:>6.2f} {t['step'] / t['limit']:>9.2f} "
              f"{t['step'] / (t['limit'] + t['warm pass']):>16.2f} {t['auto'] / t['step']:>10.2f}", flush=True)
    if args.scaling:
        print(f"\n{'model':<24} {'n':>5} {'engine':>8} {'step ms':>10} {'peak GiB':>12} {'chunk':>8}")
        for model in ("simples-full", "simples-conv"):
            scaling(model, args.device)


if __name__ == "__main__":
    main()
