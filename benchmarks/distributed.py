"""Per-step time of the distributed engine (1 server + K worker ranks) against one process, and its split.

For each K it starts K + 1 processes on this machine (gloo on CPU, NCCL on GPUs
when there are enough of them), with the environment torchrun gives, and
times the simulator's step on rank 0: the whole step, and its parts: compute
(the slowest rank's sampling and gradients), communication (the rest of the
gather: sending the parameters, receiving the gradients, waiting) and
aggregation (the rule on the server). The in-process step (the vmap engine,
every worker in one process) is timed on the same configuration first.

    python benchmarks/distributed.py                  # K in {1, 2}, the CNN at n = 25
    python benchmarks/distributed.py --workers 1 2 4 --model simples-full --device cuda
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS, WARMUP = 12, 3


def config(args: argparse.Namespace, engine: str, output: str):
    from simulator.core.config import Config
    return Config(dataset="fashionmnist", model=args.model, nb_workers=args.n, nb_decl_byz=args.n // 5,
                  aggregator="median", attack="alie", batch_size=32, engine=engine, device=args.device,
                  steps=STEPS + WARMUP, output=output)


def time_steps(sim, remote: bool) -> dict[str, float]:
    """Median seconds of the step and of its parts, after a warm-up."""
    import torch

    rows = []
    for i in range(WARMUP + STEPS):
        start = time.perf_counter()
        sim.step()
        total = time.perf_counter() - start
        honest = torch.zeros(sim.config.nb_workers, sim.model.get().numel(), device=sim.model.get().device)
        aggregation_start = time.perf_counter()
        sim.aggregator.trial(honest, sim.config.nb_decl_byz)
        aggregation = time.perf_counter() - aggregation_start
        parts = sim.workers.timing if remote else {"compute": float("nan"), "communication": 0.0}
        if i >= WARMUP:
            rows.append({"step": total, "aggregation": aggregation, **parts})
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def rank_main(args: argparse.Namespace) -> None:
    """One process of the distributed measurement (rank 0 prints one JSON line)."""
    import torch

    from simulator.core.distributed import connect, serve_rank, stop_ranks
    from simulator.core.simulation import Simulation

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(args, "distributed", tmp)
        connection = connect(cfg.parts["execution"].timeout, cfg.device)
        if connection.rank > 0:
            serve_rank(cfg, connection)
            return
        try:
            print(json.dumps(time_steps(Simulation(cfg, remote=connection), remote=True)), flush=True)
        finally:
            stop_ranks(connection)


def launch(args: argparse.Namespace, k: int) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, __file__, "--rank-process", "--model", args.model, "--n", str(args.n),
               "--device", args.device, "--threads", str(args.threads)]
    processes = []
    for rank in range(k + 1):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(k + 1), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "LOCAL_RANK": str(rank if args.device == "cuda" else 0)}
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    out = [p.communicate()[0] for p in processes]
    return json.loads(out[0].strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker ranks K (default: 1 2)")
    parser.add_argument("--model", default="simples-conv", help="model (default: simples-conv)")
    parser.add_argument("--n", type=int, default=25, help="workers n, f = n // 5 (default: 25)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default: 1)")
    parser.add_argument("--rank-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_process:
        return rank_main(args)
    import torch

    from simulator.core.simulation import Simulation

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        local = time_steps(Simulation(config(args, "vmap", tmp)), remote=False)
    print(f"# {args.model}, n = {args.n}, median under ALIE, batch 32, device {args.device}, {args.threads} torch "
          f"thread(s) per process, {os.cpu_count()} CPU cores; median of {STEPS} steps, ms")
    print(f"{'setup':<22}{'step':>9}{'compute':>10}{'comm.':>9}{'aggr.':>9}{'vs one process':>16}")
    print(f"{'one process (vmap)':<22}{1e3 * local['step']:>9.1f}{'':>10}{'':>9}{1e3 * local['aggregation']:>9.1f}"
          f"{1.0:>16.2f}")
    for k in args.workers:
        r = launch(args, k)
        print(f"{f'server + {k} rank(s)':<22}{1e3 * r['step']:>9.1f}{1e3 * r['compute']:>10.1f}"
              f"{1e3 * r['communication']:>9.1f}{1e3 * r['aggregation']:>9.1f}{r['step'] / local['step']:>16.2f}",
              flush=True)


if __name__ == "__main__":
    main()
