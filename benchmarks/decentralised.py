"""Cost of a decentralised round: one round of every node against one gradient pass at the nodes' own parameters.

For each model and gossip rule, a run of n nodes (default 64) on a torus, 4 of
them Byzantine sending the dissensus attack to their neighbours (placed so that
no honest node has two), momentum 0.9 at every node, b = 32. It times,
interleaved after two warm-up rounds:

- round: `Decentralised.step()`: sampling, the batched gradient pass at every
  node's own parameters, momentum, the Byzantine messages, the gossip step, the
  metrics;
- limit: one `engine.gradients(..., at=models)` over the same nodes' batches,
  each at its own parameters: the least a round must do;
- gossip: the rule's step alone (its share of the round; an aggregation rule that
  is not coordinate-wise, such as Krum, loops over the nodes there).

and prints medians (ms), round / limit, and the memory: what the nodes hold
(their models, momentum buffers and the Byzantine messages they receive, exactly),
and the peak a round adds above what was allocated before it (on a GPU, torch's
allocator peak; on a CPU, the C allocator's bytes in use, glibc's mallinfo2,
sampled every 0.2 ms by a thread during one untimed round, so a buffer freed
within 0.2 ms can be missed). Data: real
Fashion-MNIST when Debian's dataset-fashion-mnist is installed (28 x 28 images),
else the bundled digits with their MLP only.

    python benchmarks/decentralised.py                  # simples-full and simples-conv, 64 nodes, 7 repeats
    python benchmarks/decentralised.py --quick          # the MLP, 3 repeats
    python benchmarks/decentralised.py --threads 1     # one thread: steadier on a shared machine
    python benchmarks/decentralised.py --device cuda --rules gossip clippedgossip median krum
"""
from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments import datasets  # noqa: E402
from simulator.core.config import Config  # noqa: E402
from simulator.core.decentralised.simulation import Decentralised  # noqa: E402
from simulator.core.memory import keep_freed_memory  # noqa: E402


class _MallInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo


def _allocated() -> int:
    """Bytes the C allocator has handed out and not taken back (glibc's mallinfo2): torch's CPU tensors included."""
    info = _LIBC.mallinfo2()
    return info.uordblks + info.hblkhd


class Peak:
    """The most memory a block adds above what it starts with: torch's allocator on a GPU, the C allocator's bytes
    in use (sampled) on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.extra = device, 0

    def __enter__(self) -> "Peak":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.start, self.top, self.running = _allocated(), _allocated(), True
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.top = max(self.top, _allocated())
            time.sleep(0.0002)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.extra = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.running = False
            self.thread.join()
            self.extra = max(self.top, _allocated()) - self.start


def config(model: str, rule: str, nodes: int, device: str, dataset: str, output: str) -> Config:
    side = int(round(nodes ** 0.5))
    byzantine = [0, side * 2 + 2, side * 4 + 4, side * 6 + 6][:max(0, min(4, side // 2))]
    return Config(dataset=dataset, model=model, topology=f"torus(rows={side},byzantine={byzantine})",
                  nb_workers=side * side, nb_decl_byz=len(byzantine), aggregator=rule, attack="dissensus",
                  momentum=0.9, momentum_at="worker", batch_size=32, steps=10**6, eval_every=10**6, device=device,
                  output=output).validate()


def measure(c: Config, repeats: int) -> dict[str, float]:
    sim = Decentralised(c)
    sync = (lambda: torch.cuda.synchronize(sim.device)) if sim.device.type == "cuda" else (lambda: None)
    inputs, targets = sim.sampler.sample()
    half = sim.models.clone()
    messages = sim.messages(half, None, 0, c.lr)

    def limit() -> None:
        sim.engine.gradients(inputs, targets, at=sim.models)

    def gossip() -> None:
        with torch.no_grad():
            sim.gossip(half, messages, sim.layout)

    calls = {"round": sim.step, "limit": limit, "gossip": gossip}
    times: dict[str, list[float]] = {k: [] for k in calls}
    peak = 0
    for r in range(repeats + 2):
        for name, call in calls.items():
            sync()
            start = time.perf_counter()
            if name == "round" and r == 1:  # one round watched for memory, outside the timed ones
                with Peak(sim.device) as watched:
                    call()
                    sync()
                peak = watched.extra
            else:
                call()
                sync()
            if r >= 2:
                times[name].append(time.perf_counter() - start)
    held = sim.models.numel() + sim.momentum.buffer.numel() + messages.numel() + \
        (0 if sim.byzantine_models is None else sim.byzantine_models.numel())
    out = {k: 1000 * statistics.median(v) for k, v in times.items()}
    return {**out, "held": held * sim.models.element_size() / 2**20, "peak": peak / 2**20,
            "d": sim.models.shape[1], "engine": sim.workers.name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the MLP only, 3 repeats")
    parser.add_argument("--nodes", type=int, default=64, help="nodes n, a square (default: 64, an 8 x 8 torus)")
    parser.add_argument("--models", nargs="+", default=None, help="default: simples-full simples-conv")
    parser.add_argument("--rules", nargs="+", default=["gossip", "clippedgossip", "csplus", "median", "krum"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    fashion = "fashionmnist" in datasets.names() and _available("fashionmnist")
    dataset = "fashionmnist" if fashion else "digits"
    models = args.models or (["simples-full"] if args.quick else ["simples-full", "simples-conv"])
    if not fashion:
        models = ["simples-digits"]
    repeats = args.repeats or (3 if args.quick else 7)
    print(f"# one decentralised round vs one gradient pass at the nodes' own parameters: {dataset}, n = {args.nodes} "
          f"(torus), b = 32, dissensus from 4 Byzantine nodes, momentum 0.9; {time.strftime('%Y-%m-%d')}, "
          f"{platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, device "
          f"{args.device}{' ' + torch.cuda.get_device_name() if args.device.startswith('cuda') else ''}, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; median of {repeats} interleaved calls, ms")
    print(f"{'model':<15}{'d':>9}{'rule':>15}{'engine':>9}{'round':>10}{'limit':>10}{'gossip':>10}{'round/limit':>13}"
          f"{'held MiB':>10}{'peak MiB':>10}")
    with tempfile.TemporaryDirectory() as output:
        for model in models:
            for rule in args.rules:
                t = measure(config(model, rule, args.nodes, args.device, dataset, output), repeats)
                print(f"{model:<15}{t['d']:>9}{rule:>15}{t['engine']:>9}{t['round']:>10.1f}{t['limit']:>10.1f}"
                      f"{t['gossip']:>10.1f}{t['round'] / t['limit']:>13.2f}{t['held']:>10.1f}{t['peak']:>10.1f}",
                      flush=True)


def _available(name: str) -> bool:
    try:
        datasets.load_tensors(name, False, None)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    main()
