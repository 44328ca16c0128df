"""`run(config)`: one run from start (or its last checkpoint) to its summary.

The run's folder is `<output>/<run id>` (`simulator.core.store`). A finished run
is not run again: its stored result is returned. A run whose training loss or
parameters become NaN or infinite has diverged: it stops at that step, after
one evaluation, and its summary says ``diverged: true`` with ``steps`` the step
it reached, and ``broken_evaluation``: the evaluation of the model with every
parameter NaN, which running on would have reached (a report carries the run's
curves on with it); it is a finished result (`byzsim train` exits with status 3). A run with a
checkpoint resumes from it and ends bit-identical to an uninterrupted run on
CPU. Nothing is written before the whole configuration has been checked.
Loggers (`simulator.core.loggers`: TensorBoard, W&B, MLflow) also receive each
metrics and evaluation row as it is made, and the summary at the end.
"""
from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from simulator.core.config import Config
from simulator.core.decentralised.simulation import NODE_EVAL_COLUMNS, NODE_METRIC_COLUMNS, Decentralised
from simulator.core.distributed import connect, serve_rank, stop_ranks
from simulator.core.loggers import LogBook, Logger
from simulator.core.memory import keep_freed_memory
from simulator.core.metrics import EVAL_COLUMNS, FEDERATED_COLUMNS, METRIC_COLUMNS
from simulator.core.provenance import machine, versions
from simulator.core.simulation import Simulation
from simulator.core.store import CONFIG, EVALS, METRICS, SUMMARY, RunFolder, RunResult, finished, load_result

BACKDOOR_COLUMNS = ("asr", "robust_accuracy")  # evaluations.csv's extra columns under a targeted attack
PRIVACY_COLUMNS = ("epsilon",)  # and with a privacy mechanism: the epsilon spent by each evaluation's step


def _save(store: RunFolder, sim: Simulation, elapsed: float) -> None:
    nodes = isinstance(sim, Decentralised)  # a decentralised run's consensus distance and nodes' accuracies
    store.write_csv(METRICS, (*(FEDERATED_COLUMNS if sim.config.federated else METRIC_COLUMNS),
                              *(NODE_METRIC_COLUMNS if nodes else ())), sim.metrics)
    columns = (*EVAL_COLUMNS, *(BACKDOOR_COLUMNS if sim.targeted else ()),
               *(PRIVACY_COLUMNS if sim.privacy is not None else ()), *(NODE_EVAL_COLUMNS if nodes else ()))
    store.write_csv(EVALS, columns, sim.evaluations)
    store.save_checkpoint({**sim.state_dict(), "elapsed": elapsed})


def _summary(sim: Simulation, elapsed: float) -> dict:
    accuracies = [e["accuracy"] for e in sim.evaluations]
    return {
        "run_id": sim.config.run_id(),
        "steps": sim.t,
        "final_accuracy": accuracies[-1],
        "best_accuracy": max(accuracies),
        "final_test_loss": sim.evaluations[-1]["test_loss"],
        "final_train_loss": sim.metrics[-1]["train_loss"],
        **({"final_val_accuracy": sim.evaluations[-1]["val_accuracy"],
            "best_val_accuracy": max(e["val_accuracy"] for e in sim.evaluations)} if sim.validation is not None else {}),
        # stopped at step `steps`; what its evaluations would have been from there on, had it run on
        **({"diverged": True, "broken_evaluation": sim.broken_evaluation()} if sim.t < sim.config.steps else {}),
        **_backdoor(sim),
        **(sim.summary() if isinstance(sim, Decentralised) else {}),
        # the final epsilon at the mechanism's delta, the noise multiplier (calibrated from a target epsilon or given)
        **({"privacy": sim.privacy.summary(), "epsilon": sim.privacy.epsilon()} if sim.privacy is not None else {}),
        "wall_time": elapsed,
        "engine": sim.workers.name,
        "data": sim.data,
        "versions": versions(),
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
    }


def _backdoor(sim: Simulation) -> dict:
    """A targeted attack's backdoor in the summary (nothing for other attacks): its ASR at the last evaluation and
    its highest, the robust accuracy at the last; and, when its schedule ends (``end``) before the run does,
    its last attacked step and the ASR at each evaluation after it, keyed by the steps taken since (0: right
    after it): how long the backdoor lasts."""
    if not sim.targeted:
        return {}
    asr = [e["asr"] for e in sim.evaluations]
    out = {"final_asr": asr[-1], "best_asr": max((a for a in asr if not math.isnan(a)), default=math.nan),
           "final_robust_accuracy": sim.evaluations[-1]["robust_accuracy"]}
    last = sim.attack.last_attacked(sim.config.steps)
    if sim.attack.end is not None and sim.attack.end < sim.config.steps and last is not None and last < sim.t - 1:
        out["last_attacked_step"] = last
        out["asr_after_attack"] = {str(e["step"] - last - 1): e["asr"] for e in sim.evaluations if e["step"] > last}
    return out


@contextlib.contextmanager
def handling(signum: int, handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` answers signal ``signum`` for the block (in the main thread; other threads get no signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[list[bool]]:
    """Turn Ctrl-C into a flag checked between steps, so a checkpoint is consistent."""
    flag = [False]
    with handling(signal.SIGINT, lambda *_: flag.__setitem__(0, True)):
        yield flag


def deterministic_kernels(device: str) -> None:
    """On a GPU, ask cuDNN for its deterministic algorithms (no autotuning), so a seed gives the same run.

    Process-wide and idempotent; nothing to do on a CPU, whose kernels are deterministic already.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def run(config: Config, *, progress: bool = True,
        loggers: str | Sequence[str | Logger] = ()) -> RunResult | None:
    """Run `config` to the end (resuming a checkpoint if there is one).

    Under torchrun with ``execution="torchrun"``, rank 0 runs and returns the
    result; the other ranks compute their workers' gradients until rank 0 is
    done, then return None. ``loggers``: trackers that also record the run
    (``["tensorboard", "wandb"]``, specs or `Logger` objects; see `simulator.core.loggers`).
    """
    keep_freed_memory()
    config.validate()
    logs = LogBook(loggers)  # an unknown logger or a missing package is refused before anything runs
    deterministic_kernels(config.device)
    execution = config.parts["execution"]
    connection = connect(execution.timeout, config.device) if execution.distributed else None
    if connection is not None and connection.rank > 0:
        serve_rank(config, connection)
        return None
    store = RunFolder(config.folder())
    sim = None
    try:
        if finished(store.path):
            return load_result(store.path)
        # every user error is raised here, before any file is written
        sim = (Simulation if config.topology is None else Decentralised)(config, remote=connection)
        state, elapsed = store.load_checkpoint(), 0.0
        if state is not None:
            sim.load_state_dict(state)
            elapsed = state["elapsed"]
        fresh = not store.path.exists()
        try:
            with logs:  # closes the loggers' files, also before a failed run's folder is removed below
                return _train(sim, store, elapsed, progress, logs)
        except Exception:
            if fresh and store.load_checkpoint() is None:  # nothing to resume from: leave nothing behind
                shutil.rmtree(store.path, ignore_errors=True)
            raise
    finally:
        if connection is not None:
            stop_ranks(connection)


def _train(sim: Simulation, store: RunFolder, elapsed: float, progress: bool, logs: LogBook) -> RunResult:
    """Train from the simulation's current step to the end, checkpointing as configured."""
    config = sim.config
    store.remove_temporaries()  # of a write killed with the run this resumes
    store.write_json(CONFIG, config.to_saved())
    logs.start(config, store.path)
    started = time.perf_counter() - elapsed
    bar = tqdm(total=config.steps, initial=sim.t, disable=not progress, desc=config.run_id()[:40], leave=False)
    with deferred_interrupt() as interrupted, bar:
        if sim.t == 0 and not sim.evaluations:
            logs.log(sim.evaluate())
        while sim.t < config.steps:
            logs.log(sim.step())
            bar.update(1)
            if not sim.finite():  # diverged: nothing finite can follow, so the run stops with its evaluation
                logs.log(sim.evaluate())
                break
            if sim.t % config.eval_every == 0 or sim.t == config.steps:
                bar.set_postfix(acc=f"{logs.log(sim.evaluate())['accuracy']:.3f}")
            if interrupted[0]:
                _save(store, sim, time.perf_counter() - started)
                raise KeyboardInterrupt(f"interrupted at step {sim.t}; run the same command again to resume")
            if sim.t % config.checkpoint_every == 0 and sim.t < config.steps:
                _save(store, sim, time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    _save(store, sim, elapsed)
    summary = _summary(sim, elapsed)
    store.write_json(SUMMARY, summary)
    logs.finish(summary)
    store.remove_temporaries()
    return load_result(store.path)
