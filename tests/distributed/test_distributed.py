"""Torchrun execution with gloo on localhost: the same results as in one process, crashes, bad launches.

Each test starts the ranks as separate processes with the environment torchrun
would give them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free port),
one thread each.
"""
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from simulator import Config, run
from simulator.core.distributed import backend

RUN = ["--dataset", "digits", "--nb-workers", "9", "--nb-decl-byz", "2", "--aggregator", "median", "--steps", "20",
       "--eval-every", "10", "--checkpoint-every", "10", "--quiet", "--execution", "torchrun(timeout=20)"]


STEPS = 400  # long enough that a fast machine cannot finish between the first checkpoint and the kill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], world: int = 3, port: int | None = None, ranks=None) -> dict[int, subprocess.Popen]:
    port = port or free_port()
    processes = {}
    for rank in ranks if ranks is not None else range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1", "LOCAL_RANK": "0"}
        processes[rank] = subprocess.Popen([sys.executable, "-m", "simulator", "train", *args],
                                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return processes


def finish(processes: dict[int, subprocess.Popen], timeout: float = 120) -> dict[int, tuple[int, str, str]]:
    return {rank: (p.wait(timeout), *p.communicate()) for rank, p in processes.items()}


def metrics(folder: Path) -> list[dict]:
    """metrics.csv without the wall-clock column."""
    with open(folder / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k != "step_time"} for row in csv.DictReader(handle)]


def params(folder: Path) -> dict:
    return torch.load(folder / "checkpoint.pt", weights_only=False)["module"]


def in_process(tmp_path: Path, **changes) -> Path:
    config = Config(**{**dict(dataset="digits", nb_workers=9, nb_decl_byz=2, aggregator="median", steps=20,
                              eval_every=10, output=str(tmp_path / "local")), **changes})
    return run(config, progress=False).folder


def test_three_ranks_give_the_in_process_result_bit_for_bit(tmp_path):
    """The Byzantine workers on the ranks too (label flipping); the crash test checks them on the server."""
    out, attack = tmp_path / "dist", "labelflip"
    results = finish(start([*RUN, "--attack", attack, "--execution", "torchrun(timeout=20,byzantine=ranks)",
                            "--output", str(out)]))
    assert all(code == 0 for code, _, _ in results.values()), results
    assert "final accuracy" in results[0][1] and results[1][1] == results[2][1] == ""
    (folder,) = out.iterdir()
    local = in_process(tmp_path, attack=attack)
    assert (folder / "evaluations.csv").read_text() == (local / "evaluations.csv").read_text()
    assert metrics(folder) == metrics(local)
    assert all(torch.equal(params(folder)[k], v) for k, v in params(local).items())


def test_gpus_carry_tensors_over_nccl_and_control_messages_over_gloo():
    assert backend(cuda=False) == "gloo"
    assert backend(cuda=True) == "cpu:gloo,cuda:nccl"  # headers and bytes are CPU tensors, which NCCL refuses


def test_a_dead_rank_stops_the_run_naming_it_and_the_run_resumes(tmp_path):
    out = tmp_path / "dist"
    args = [*RUN, "--attack", "bitflip", "--output", str(out), "--execution", "torchrun(timeout=8)",
            "--steps", str(STEPS)]
    processes = start(args)
    deadline = time.time() + 90
    while not list(out.glob("*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.02)
    processes[2].send_signal(signal.SIGKILL)
    killed = time.time()
    results = finish(processes)
    assert results[0][0] == 2 and "rank 2" in results[0][2] and "Traceback" not in results[0][2], results
    assert time.time() - killed < 30  # within the timeout (and the time to write the message)
    (folder,) = out.iterdir()
    assert (folder / "checkpoint.pt").exists() and not (folder / "summary.json").exists()
    resumed = finish(start(args))
    assert all(code == 0 for code, _, _ in resumed.values()), resumed
    local = in_process(tmp_path, attack="bitflip", steps=STEPS)
    assert (folder / "evaluations.csv").read_text() == (local / "evaluations.csv").read_text()


def test_bad_launches_end_with_one_line(tmp_path):
    args = [*RUN, "--output", str(tmp_path / "o"), "--execution", "torchrun(timeout=3)"]
    alone = subprocess.run([sys.executable, "-m", "simulator", "train", *args], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")})
    assert alone.returncode == 2 and "torchrun" in alone.stderr and "Traceback" not in alone.stderr
    crowded = finish(start([*args, "--nb-workers", "3", "--nb-decl-byz", "1"], world=4))
    assert crowded[0][0] == 2 and "at most 3 processes" in crowded[0][2] and "Traceback" not in crowded[0][2]
    lonely = finish(start(args, world=3, ranks=[1]), timeout=60)
    assert lonely[1][0] == 2 and "Cannot join the process group" in lonely[1][2] and "Traceback" not in lonely[1][2]


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out += [int(child), *_children(int(child))]
    return out


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(v.split(b"=")[1]) for v in env if v.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.slow
def test_torchrun_restarts_a_run_whose_rank_died(tmp_path):
    """torchrun --max-restarts restarts every rank and the run resumes; torch's shared rendezvous store breaks
    restarts (pytorch/pytorch#135712), hence TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, as the docs say."""
    out = tmp_path / "dist"
    env = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3",
                "--max-restarts=1", "-m", "simulator", "train"]
    launcher = subprocess.Popen([*torchrun, *RUN, "--attack", "bitflip",
                                 "--steps", str(STEPS), "--output", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    deadline = time.time() + 120
    while not list(out.glob("*/checkpoint.pt")) and time.time() < deadline:
        time.sleep(0.02)
    (victim,) = [pid for pid in _children(launcher.pid) if _rank_of(pid) == 2 and "simulator" in
                 Path(f"/proc/{pid}/cmdline").read_text()]
    os.kill(victim, signal.SIGKILL)
    code, (stdout, stderr) = launcher.wait(300), launcher.communicate()
    assert code == 0, stderr[-3000:]
    (folder,) = out.iterdir()
    local = in_process(tmp_path, attack="bitflip", steps=STEPS)
    assert (folder / "evaluations.csv").read_text() == (local / "evaluations.csv").read_text()
    assert all(torch.equal(params(folder)[k], v) for k, v in params(local).items())


def test_transport_errors_are_told_in_one_line_even_when_torch_gives_none():
    from simulator.core.distributed.transport import reason

    assert reason(RuntimeError("Connection closed by peer\n" + "frame\n" * 50)) == "Connection closed by peer"
    assert reason(RuntimeError("")) == "RuntimeError" and len(reason(RuntimeError("x" * 1000))) == 300
