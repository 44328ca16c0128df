"""DP-SGD's per-sample clipping step of n workers, side by side with Opacus's and with the non-private step.

For each model (`simples-full`, the 784-100-10 MLP, and `simples-conv`, the
28x28 CNN), n = 25 workers and b = 32 samples each, on the same model and
samples, it measures:

- ``plain``: the non-private step, `engine.gradients` of the grouped engine
  (each worker's mean gradient);
- ``clip``: the grouped engine's per-sample clipping alone
  (`engine.clipped_gradients`: each worker's per-sample gradients clipped to
  C = 1 and summed inside the batched pass), without the noise;
- ``grouped``, ``vmap``: byzsim's whole DP-SGD step (`PerSample.gradients`):
  the clipped sums, Gaussian noise on every worker's d coordinates, over b;
- ``opacus``: Opacus's `GradSampleModule` (its per-sample gradients through
  forward and backward hooks) over the n b samples in one batch, then the
  same clipping, per-worker sums and noise,

each as the median of interleaved calls after two warm-up rounds (a busy
machine slows them alike), with its peak memory above the set-up's: on a GPU
`torch.cuda.max_memory_allocated`, on a CPU the peak resident set (Linux's
VmHWM, reset after the set-up) of a fresh process that runs that step alone,
three times (`--peak-of`). Needs Opacus
(``pip install 'byzsim[privacy]'``). Run:

    python benchmarks/privacy.py                 # both models, n = 25
    python benchmarks/privacy.py --quick         # fewer repeats
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines import side_by_side_ms  # noqa: E402  (benchmarks/engines.py, beside this script: interleaved medians)
from experiments import Configuration, Model  # noqa: E402
from simulator.core.engines import make_engine  # noqa: E402
from simulator.core.memory import keep_freed_memory  # noqa: E402
from simulator.core.privacy.dpsgd import PerSample  # noqa: E402

MODELS = ("simples-full", "simples-conv")
METHODS = ("plain", "clip", "grouped", "vmap", "opacus")
LABELS = {"plain": "no privacy (grouped)", "clip": "clipping only (grouped)", "grouped": "DP-SGD (grouped)",
          "vmap": "DP-SGD (vmap)", "opacus": "DP-SGD (Opacus)"}
CLIP, SIGMA = 1.0, 1.0


def setup(name: str, n: int, b: int, device: torch.device) -> dict:
    """Each method's call on one model and one set of samples ([n, b, 1, 28, 28])."""
    from opacus import GradSampleModule  # lazy: the optional extra, only where the benchmark runs

    warnings.filterwarnings("ignore", message="Full backward hook is firing")  # Opacus's hooks on the first layer
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Model(name, Configuration(device=device, dtype=torch.float32))
        inputs = torch.randn(n, b, 1, 28, 28, device=device)
        targets = torch.randint(0, 10, (n, b), device=device)
    noise = torch.Generator(device=device).manual_seed(1)
    private = PerSample(CLIP, SIGMA, noise, keep_clean=False)
    engines = {kind: make_engine(kind, model, F.cross_entropy) for kind in ("grouped", "vmap")}
    wrapped = GradSampleModule(copy.deepcopy(model.module), batch_first=True, loss_reduction="sum")

    def opacus() -> torch.Tensor:
        wrapped.zero_grad(set_to_none=True)
        F.cross_entropy(wrapped(inputs.flatten(0, 1)), targets.flatten(), reduction="sum").backward()
        samples = [p.grad_sample.reshape(n, b, -1) for p in wrapped.parameters()]
        factors = (CLIP / sum(g.square().sum(dim=2) for g in samples).sqrt()).clamp(max=1.0)  # [n, b]
        sums = torch.cat([torch.einsum("nb,nbd->nd", factors, g) for g in samples], dim=1)
        return sums.add_(private.noise(tuple(sums.shape), sums)).div_(b)

    return {"plain": lambda: engines["grouped"].gradients(inputs, targets),
            "clip": lambda: engines["grouped"].clipped_gradients(inputs, targets, clip=CLIP),
            "grouped": lambda: private.gradients(engines["grouped"], inputs, targets),
            "vmap": lambda: private.gradients(engines["vmap"], inputs, targets),
            "opacus": opacus}


def peak_here(call, device: torch.device) -> float:
    """MiB the call needs above what is held before it: CUDA's allocator peak, or this process's peak RSS."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(3):
            call()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident set (VmHWM) restarts from here
    before = _status_kib("VmRSS")
    for _ in range(3):
        call()
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def peak_mib(name: str, method: str, args: argparse.Namespace, calls: dict, device: torch.device) -> float:
    """The method's peak memory: in this process on a GPU, in a fresh process of its own on a CPU."""
    if device.type == "cuda":
        return peak_here(calls[method], device)
    command = [sys.executable, __file__, "--peak-of", method, "--model", name, "--n", str(args.n), "--b", str(args.b),
               "--threads", str(torch.get_num_threads())]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)["mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=25, help="workers")
    parser.add_argument("--b", type=int, default=32, help="samples per worker")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--model", choices=MODELS, default=None, help="one model only")
    parser.add_argument("--peak-of", choices=METHODS, default=None, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.peak_of is not None:  # a fresh process: the step's first calls, with the allocator's defaults
        calls = setup(args.model, args.n, args.b, device)
        print(json.dumps({"mib": peak_here(calls[args.peak_of], device)}))
        return
    keep_freed_memory()
    print(f"privacy benchmark: n = {args.n}, b = {args.b}, C = {CLIP}, sigma = {SIGMA}, device {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of "
          f"{3 if args.quick else 7} interleaved calls; peak memory above the set-up's")
    print(f"{'model':14} {'step':26} {'ms':>8} {'peak MiB':>9} {'x no privacy':>13} {'x Opacus':>9}")
    for name in (args.model,) if args.model else MODELS:
        calls = setup(name, args.n, args.b, device)
        ms = side_by_side_ms(calls, 3 if args.quick else 7, device)
        for method in METHODS:
            mib = peak_mib(name, method, args, calls, device)
            print(f"{name:14} {LABELS[method]:26} {ms[method]:>8.1f} {mib:>9.1f} {ms[method] / ms['plain']:>13.2f} "
                  f"{ms[method] / ms['opacus']:>9.2f}")


if __name__ == "__main__":
    main()
