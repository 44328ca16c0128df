"""Running a grid: every run into one folder, finished runs skipped, N at a time, one shard of N.

- Output: ``<output>/<run id>/`` per run, the grid file copied in as
  ``grid.toml``, and ``plugins.json`` naming the outside plug-ins that
  registered parts (`simulator.core.plugin_record`). A run whose ``summary.json`` exists is skipped, so an
  interrupted grid resumes (each unfinished run from its last checkpoint). A cell of the default engine
  ``fastest`` whose run was made under ``auto``, the default before it, keeps that run
  (`simulator.core.engines.previous`).
- Order: pending runs start seed by seed (all runs of the lowest seed, then
  of the next, ...), so a long grid stopped part-way has every cell at
  one seed before it repeats any (a study spread over several sittings can be
  read after each).
- Failures: a run that raises is recorded in ``<output>/errors/<run id>.txt``
  (its configuration and traceback) and does not stop the others. A worker
  process that dies (killed, out of memory) takes its run with it: the runs it
  lost go to fresh workers and resume from their last checkpoint; after
  ``WORKER_TRIES`` pools in a row whose workers die before finishing any run
  (workers that cannot start), the grid stops with one line naming the cause.
- ``jobs``: that many runs at a time in worker processes that live for the
  whole grid (importing torch costs seconds; a small run must not pay it),
  each with ``threads`` torch threads (default 1).
- ``records``: a second folder keeping a few-kilobyte record of each finished run,
  from which runs finished elsewhere are restored (`simulator.grid.records`).
- ``loggers``: trackers that also record every run (specs such as ``"tensorboard"``,
  `simulator.core.loggers`), built anew for each run in the process that runs it.
- ``shard=(i, n)``: only every n-th run, starting at the i-th, of the grid
  sorted by run id: deterministic, disjoint and balanced slices for a batch
  system's job array writing into one shared folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing
import signal
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from experiments.atomic import atomic_write
from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.engines.previous import keep_previous_runs
from simulator.core.loggers import build_loggers
from simulator.core.migrate import refuse_outdated
from simulator.core.plugin_record import record as record_plugins
from simulator.core.run import handling, run
from simulator.core.store import CONFIG, finished
from simulator.grid.records import save_record, sync_records
from simulator.grid.spec import Grid

__all__ = ["GridOutcome", "parse_shard", "shard_of", "seed_major", "prepare", "run_grid", "GRID_FILE", "ERRORS"]

GRID_FILE, ERRORS = "grid.toml", "errors"
WORKER_TRIES = 3  # pools whose workers die in a row, no run finished, before a grid stops


@dataclass
class GridOutcome:
    """What a grid run did."""

    done: int = 0
    failed: int = 0
    skipped: int = 0  # finished before this run started
    restored: int = 0  # of which restored from run records

    def line(self) -> str:
        restored = f" ({self.restored} restored from records)" if self.restored else ""
        return f"{self.done} done, {self.failed} failed, {self.skipped} already finished{restored}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (1 <= i <= N) as (i, N), or `UserException`."""
    index, slash, count = text.partition("/")
    if slash and index.strip().isdigit() and count.strip().isdigit():
        i, n = int(index), int(count)
        if 1 <= i <= n:
            return i, n
    raise UserException(f"Malformed shard {text!r}: expected i/N with 1 <= i <= N, e.g. --shard 2/8.")


def shard_of(configs: list[Config], shard: tuple[int, int] | None) -> list[Config]:
    """The shard's runs: every N-th of the runs sorted by id, from the i-th (all runs without a shard)."""
    if shard is None:
        return list(configs)
    i, n = shard
    return sorted(configs, key=Config.run_id)[i - 1::n]


def prepare(grid: Grid, output: str | Path, *, append: bool = False) -> list[Config]:
    """The grid's configs writing into ``output``; refuses a folder holding another grid's runs (unless ``append``)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UserException(f"Output {str(output)!r} exists and is not a folder.")
    configs = keep_previous_runs([dataclasses.replace(c, output=str(output)) for c in grid.configs], [output])
    ids = {c.run_id() for c in configs}
    if output.is_dir() and not append:
        foreign = sorted(p.name for p in output.iterdir() if (p / CONFIG).exists() and p.name not in ids)
        refuse_outdated(output, foreign)
        if foreign:
            raise UserException(f"Folder {str(output)!r} holds {len(foreign)} runs that are not in grid {grid.name!r} "
                                f"of {grid.path} (e.g. {foreign[0]}); pass --append to add this grid to it, "
                                f"or choose another --output.")
    return configs


def seed_major(configs: list[Config]) -> list[Config]:
    """The runs ordered by seed, grid order kept within a seed: every cell once before any twice."""
    return sorted(configs, key=lambda c: c.seed)


def run_grid(grid: Grid, output: str | Path, *, jobs: int = 1, threads: int | None = None,
             shard: tuple[int, int] | None = None, append: bool = False, progress: bool = True,
             records: str | Path | None = None, loggers: str | Sequence[str] = ()) -> GridOutcome:
    """Run the grid (or one shard of it) into ``output``; see the module docstring.

    With ``records``, finished runs are also kept as small records in that folder, and runs recorded
    there count as finished (`simulator.grid.records`). ``loggers``: specs, or a ``--log`` text.
    """
    if jobs < 1:
        raise UserException(f"--jobs must be at least 1, got {jobs}.")
    loggers = tuple(logger.spec for logger in build_loggers(loggers))  # names and packages checked before any run
    configs = prepare(grid, output, append=append)
    configs = shard_of(configs if records is None else keep_previous_runs(configs, records=[records]), shard)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write(output / GRID_FILE, grid.path.read_bytes())
    record_plugins(output)
    records = None if records is None else Path(records)
    restored = 0 if records is None else sync_records(configs, records)
    pending = seed_major([c for c in configs if not finished(c.folder())])
    outcome = GridOutcome(skipped=len(configs) - len(pending), restored=restored)
    bar = tqdm(total=len(configs), initial=outcome.skipped, desc=f"grid {grid.name}", unit="run",
               disable=not progress)
    with bar, _resume_hint(outcome):
        bar.set_postfix_str(outcome.line())
        for run_id, error in _execute(pending, jobs, threads, loggers):
            errors = output / ERRORS / f"{run_id}.txt"
            if error is None:
                outcome.done += 1
                errors.unlink(missing_ok=True)
                if records is not None:
                    save_record(output / run_id, records)
            else:
                outcome.failed += 1
                atomic_write(errors, error.encode())
            bar.update(1)
            bar.set_postfix_str(outcome.line())
    return outcome


@contextlib.contextmanager
def _resume_hint(outcome: GridOutcome) -> Iterator[None]:
    """An interrupted grid says what it finished and how to resume."""
    try:
        yield
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"grid interrupted ({outcome.line()}); run the same command again to resume "
                                f"(unfinished runs from their last checkpoint)") from None


def _execute(configs: list[Config], jobs: int, threads: int | None,
             loggers: tuple[str, ...] = ()) -> Iterator[tuple[str, str | None]]:
    """(run id, error text or None) per run, in completion order; each run logs to ``loggers`` (specs)."""
    payloads = [c.to_dict() for c in configs]
    if jobs == 1 or len(configs) <= 1:
        if threads:
            torch.set_num_threads(threads)
        yield from (_run_one(payload, loggers) for payload in payloads)
        return
    pending, broken = {c.run_id(): payload for c, payload in zip(configs, payloads)}, 0
    with handling(signal.SIGTERM, _interrupt):
        while pending:  # a pool whose worker dies is broken: its lost runs go to a new one (they resume)
            lost, finished_one = {}, False
            pool = ProcessPoolExecutor(min(jobs, len(pending)), multiprocessing.get_context("spawn"),  # no forked
                                       initializer=_init_worker, initargs=(threads or 1,))  # OpenMP state
            try:
                futures = {pool.submit(_run_one, payload, loggers): run_id for run_id, payload in pending.items()}
                for future in as_completed(futures):
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost[futures[future]], cause = pending[futures[future]], future.exception()
                        continue
                    finished_one = True
                    yield future.result()
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown()
            pending, broken = lost, 0 if finished_one else broken + 1
            if pending and broken == WORKER_TRIES:
                raise UserException(f"The grid's worker processes died {broken} times in a row before finishing a "
                                    f"run ({cause}); if they die at start-up, does the script that runs the grid "
                                    f"guard its code with `if __name__ == \"__main__\":`? Unfinished runs resume "
                                    f"when the grid is run again.")


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (an interrupted grid must not leave them running orphaned runs)."""
    for process in list(pool._processes.values()):  # the executor has no public way to end running workers
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM interrupts the runner like Ctrl-C while the pool runs, so leaving the pool terminates its workers.

    Python's default SIGTERM ends the process at once, and the workers would go on with their
    runs, orphaned; a rerun of the grid would then write the same run folders twice at a time.
    """
    raise KeyboardInterrupt


def _init_worker(threads: int) -> None:
    """A pool worker: its torch threads, and tqdm's lock as a thread lock.

    Left to itself, tqdm makes a multiprocessing lock in every spawned worker, which a worker
    killed by an interrupted grid never releases: Python then warns of "leaked semaphore
    objects". The workers' runs draw no progress bars, so a thread lock serves.
    """
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(threads)


def _run_one(payload: dict, loggers: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """Run one config (in this process or a worker); the error as text instead of raising."""
    config = Config.from_dict(payload)
    try:
        run(config, progress=False, loggers=loggers)
        gc.collect()  # a run's objects caught in a reference cycle would hold its data until a full pass
        return config.run_id(), None
    except Exception:  # recorded for the user; the grid goes on
        error = traceback.format_exc()
    except KeyboardInterrupt as interrupt:  # Ctrl-C reaches the workers too: one line, not a traceback each
        if multiprocessing.parent_process() is None:
            raise
        error = str(interrupt)
    return config.run_id(), "\n".join(f"{k} = {v!r}" for k, v in config.to_dict().items()) + f"\n\n{error}"


def iter_status(configs: Iterable[Config]) -> Iterator[tuple[Config, str]]:
    """Each config with its status: done, started (a checkpoint exists) or pending."""
    for config in configs:
        folder = config.folder()
        yield config, "done" if finished(folder) else "started" if folder.exists() else "pending"
