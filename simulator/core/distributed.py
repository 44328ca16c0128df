"""The `distributed` engine: the honest workers on other torch.distributed ranks.

Rank 0 is the server: it runs the simulation (attack, aggregation, update,
evaluation, results) exactly as in one process, but asks ranks 1..R for the
honest workers' gradients. Each of those ranks holds a contiguous slice of
the honest workers: their partitions, their samplers (seeded as in one
process, so they draw the same batches) and a gradient engine (``vmap`` when
the model allows it) on its own device. Each step the server sends every rank
the flat parameters and buffers, and receives its workers' gradients, losses
and updated batch-norm buffers. By default the Byzantine vectors are made on
the server after the gather (an omniscient attack needs the honest vectors);
with ``dist_byzantine="ranks"`` the ranks also hold the Byzantine workers and
compute their own (poisoned) gradients when an attack asks for them.

Communication is point to point (gloo on CPU; on GPUs NCCL for the CUDA
tensors and gloo for the CPU control messages, ``LOCAL_RANK`` picking the device), every receive bounded by ``dist_timeout`` seconds: a
dead or hung rank stops the run within the timeout with a message naming it,
and the run resumes from its last checkpoint when started again (torchrun's
``--max-restarts`` restarts every rank, and rank 0 sends each rank its saved
sampler state). Launch with torchrun; see docs/engines.md.
"""
from __future__ import annotations

import datetime
import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from attacks.base import Poison
from experiments.tools import UserException
from simulator.core.engines import make_engine
from simulator.core.engines.base import Engine, store_buffer_average
from simulator.core.sampler import WorkerSampler

__all__ = ["Connection", "backend", "connect", "RemoteWorkers", "serve", "serve_rank", "stop_ranks", "slices", "ENV"]

ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
COMPUTE, BYZANTINE, STATE, LOAD, STOP = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class Connection:
    """This process's place in the process group."""

    rank: int
    world: int
    device: torch.device
    timeout: datetime.timedelta

    @property
    def workers(self) -> int:
        """Ranks holding workers: all but the server."""
        return self.world - 1


def backend(cuda: bool) -> str:
    """gloo on CPU; on GPUs NCCL for the CUDA tensors (parameters, gradients) and gloo for the CPU ones
    (command headers, sizes, checkpoint bytes), which NCCL does not carry."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def connect(timeout: float, device: str) -> Connection:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``...), or say in one line why not."""
    missing = [name for name in ENV if name not in os.environ]
    if missing:
        raise UserException(f"--engine distributed runs under torchrun (it sets {', '.join(missing)}): e.g. "
                            "torchrun --standalone --nproc-per-node=3 -m simulator train ... --engine distributed.")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world < 2:
        raise UserException("--engine distributed needs at least 2 processes: the server and one worker rank.")
    cuda = torch.device(device).type == "cuda"
    local = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
    span = datetime.timedelta(seconds=timeout)
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend(cuda), rank=rank, world_size=world, timeout=span,
                                    device_id=local if cuda else None)
        except Exception as err:  # unreachable rendezvous, refused port, timeout
            raise UserException(f"Cannot join the process group at {os.environ['MASTER_ADDR']}:"
                                f"{os.environ['MASTER_PORT']} as rank {rank} of {world}: "
                                f"{_reason(err)}") from None
    return Connection(rank, world, local, span)


def slices(count: int, ranks: int) -> list[range]:
    """Contiguous, balanced slices of ``count`` workers over ``ranks`` ranks (rank r + 1 takes slice r)."""
    bounds = np.linspace(0, count, ranks + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------- transport
def _who(rank: int) -> str:
    return "The server (rank 0)" if rank == 0 else f"Worker rank {rank}"


def _reason(err: Exception) -> str:
    """The first line of a transport error (torch's can run to pages), at most 300 characters."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def _send(tensor: torch.Tensor, dst: int) -> None:
    """Send to ``dst`` (blocking, bounded by the group's timeout), or raise naming the rank."""
    try:
        dist.send(tensor.contiguous(), dst)
    except Exception as err:  # the peer died (connection closed) or hangs (send timed out)
        raise UserException(f"{_who(dst)} did not take a message (it died or hangs): "
                            f"{_reason(err)}") from None


def _recv(like: torch.Tensor, src: int, timeout: datetime.timedelta, what: str) -> torch.Tensor:
    """Receive into a tensor shaped like ``like`` from ``src``, or raise naming the rank."""
    try:
        dist.irecv(like, src).wait(timeout)
    except Exception as err:
        raise UserException(f"{_who(src)} did not send {what} within {timeout.total_seconds():g} s "
                            f"(it died or hangs): {_reason(err)}") from None
    return like


def _send_bytes(data: bytes, dst: int) -> None:
    _send(torch.tensor([len(data)], dtype=torch.int64), dst)
    _send(torch.frombuffer(bytearray(data), dtype=torch.uint8), dst)


def _recv_bytes(src: int, timeout: datetime.timedelta, what: str) -> bytes:
    size = int(_recv(torch.zeros(1, dtype=torch.int64), src, timeout, what))
    return bytes(_recv(torch.empty(size, dtype=torch.uint8), src, timeout, what).numpy())


def _dumps(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _loads(data: bytes) -> object:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def _flat_state(module: torch.nn.Module, params: torch.Tensor) -> torch.Tensor:
    """The parameters, then every buffer, as one float64 vector (integer counters are exact below 2^53)."""
    buffers = [b.detach().reshape(-1).double() for b in module.buffers()]
    return torch.cat([params.detach().double(), *buffers])


def _load_flat_state(module: torch.nn.Module, params: torch.Tensor, flat: torch.Tensor) -> None:
    with torch.no_grad():
        params.copy_(flat[:params.numel()])
        offset = params.numel()
        for b in module.buffers():
            b.copy_(flat[offset:offset + b.numel()].view_as(b))
            offset += b.numel()


# ------------------------------------------------------------------ server
class RemoteWorkers:
    """Rank 0's view of the worker ranks: the same interface as `simulator.core.workers.LocalWorkers`."""

    def __init__(self, connection: Connection, model, honest: int, byzantine: int, *, remote_byzantine: bool,
                 local: "LocalWorkersLike | None") -> None:
        self.connection, self.model, self.local = connection, model, local
        self.module = model.module
        self.honest_slices = slices(honest, connection.workers)
        self.byzantine_slices = slices(byzantine, connection.workers) if remote_byzantine else None
        if any(len(s) == 0 for s in self.honest_slices):
            raise UserException(f"{connection.workers} worker ranks for {honest} honest workers: every rank needs "
                                f"at least one; launch at most {honest + 1} processes.")
        self.buffers = [name for name, _ in self.module.named_buffers()]
        self.dimension = model.get().numel()
        self.timing = {"compute": 0.0, "communication": 0.0}  # seconds, of the last honest() call

    name = "distributed"

    def _broadcast(self, command: int, ranks: list[int], argument: int = 0) -> None:
        header = torch.tensor([command, argument], dtype=torch.int64)
        for r in ranks:
            _send(header, r)

    def _send_state(self, ranks: list[int]) -> None:
        flat = _flat_state(self.module, self.model.get()).to(self.connection.device)
        for r in ranks:
            _send(flat, r)

    def _gather(self, parts: list[range], width: int, what: str) -> list[torch.Tensor]:
        out = []
        for rank, part in enumerate(parts, start=1):
            if len(part):
                like = torch.empty(len(part), width, dtype=torch.float64, device=self.connection.device)
                out.append(_recv(like, rank, self.connection.timeout, what).cpu())
        return out

    def honest(self, rows: None = None, local: None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every honest worker's gradients (no pools or local steps: federated rounds run in one process)."""
        start = time.perf_counter()
        ranks = list(range(1, self.connection.world))
        self._broadcast(COMPUTE, ranks)
        self._send_state(ranks)
        width = self.dimension + 2 + sum(b.numel() for b in self.module.buffers())
        rows = torch.cat(self._gather(self.honest_slices, width, "its workers' gradients"))
        compute = float(rows[:, -1].max())  # the slowest rank's sampling and gradients
        self.timing = {"compute": compute, "communication": time.perf_counter() - start - compute}
        dtype = self.model.get().dtype
        gradients, losses = rows[:, :self.dimension].to(dtype), rows[:, self.dimension].to(dtype)
        copies, offset = {}, self.dimension + 1
        for name, b in self.module.named_buffers():
            copies[name] = rows[:, offset:offset + b.numel()].reshape(-1, *b.shape).to(b.dtype)
            offset += b.numel()
        if copies:
            store_buffer_average(self.module, copies)
        return gradients.to(self.model.get().device), losses.to(self.model.get().device)

    def byzantine(self, poison: Poison | None, rows: None = None, local: None = None) -> torch.Tensor:
        if self.byzantine_slices is None:
            return self.local.byzantine(poison)
        ranks = [r for r, part in enumerate(self.byzantine_slices, start=1) if len(part)]
        self._broadcast(BYZANTINE, ranks, int(poison is not None))
        self._send_state(ranks)
        rows = torch.cat(self._gather(self.byzantine_slices, self.dimension, "its Byzantine workers' gradients"))
        return rows.to(self.model.get().dtype).to(self.model.get().device)

    def state_dict(self) -> dict:
        ranks = list(range(1, self.connection.world))
        self._broadcast(STATE, ranks)
        states = [_recv_bytes(r, self.connection.timeout, "its state") for r in ranks]
        local = self.local.state_dict() if self.local else {}
        return {"engine_name": self.name, "engine": {"ranks": states, "local": local.get("engine")},
                "sampler": None, "byzantine_sampler": local.get("byzantine_sampler")}

    def load_state_dict(self, state: dict) -> None:
        ranks = list(range(1, self.connection.world))
        if len(state["engine"]["ranks"]) != len(ranks):
            raise UserException(f"This checkpoint was written with {len(state['engine']['ranks'])} worker ranks, "
                                f"not {len(ranks)}: resume it with as many processes as before.")
        self._broadcast(LOAD, ranks)
        for r, data in zip(ranks, state["engine"]["ranks"]):
            _send_bytes(data, r)
        if self.local:
            self.local.load_state_dict({"engine": state["engine"]["local"], "sampler": None,
                                        "byzantine_sampler": state["byzantine_sampler"]})


LocalWorkersLike = object  # simulator.core.workers.LocalWorkers (its byzantine(), state_dict(), load_state_dict())


def stop_ranks(connection: Connection) -> None:
    """Tell every worker rank to stop (best effort: a dead rank is not waited for), then leave the group."""
    for r in range(1, connection.world):
        try:
            _send(torch.tensor([STOP, 0], dtype=torch.int64), r)
        except Exception:  # that rank is gone already
            pass
    leave()


def leave() -> None:
    """Leave the process group (a no-op when not in one)."""
    if dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------- ranks
def serve_rank(config, connection: Connection) -> None:
    """A worker rank: build the same run as the server (data, partition, model), then serve its slice of workers."""
    import dataclasses

    from attacks.base import DataAttack
    from simulator.core.seeding import derive_seed
    from simulator.core.simulation import Simulation  # imported here: the simulation itself imports this module

    sim = Simulation(dataclasses.replace(config, device=str(connection.device)))
    c, parts, mine = sim.config, sim.sampler.parts, connection.rank - 1
    inputs, targets = sim.sampler.inputs, sim.sampler.targets
    part = slices(len(parts), connection.workers)[mine]
    if len(part) == 0:
        raise UserException(f"{connection.workers} worker ranks for {len(parts)} honest workers: every rank needs "
                            f"at least one; launch at most {len(parts) + 1} processes.")
    honest = WorkerSampler(inputs, targets, parts[part.start:part.stop], c.batch_size,
                           derive_seed(c.seed, "sampler"), first=part.start)
    byzantine = None
    if c.dist_byzantine == "ranks" and c.real_byz:
        mine_byz = slices(c.real_byz, connection.workers)[mine]
        if len(mine_byz):
            everything = [torch.arange(len(targets))] * len(mine_byz)
            byzantine = WorkerSampler(inputs, targets, everything, c.batch_size,
                                      derive_seed(c.seed, "byzantine sampler"), first=mine_byz.start)
    poison = sim.attack.poison if isinstance(sim.attack, DataAttack) else None
    try:
        serve(connection, sim.model, sim.engine, honest, byzantine, poison, sim.num_classes)
    finally:
        leave()


def serve(connection: Connection, model, engine: Engine, honest: WorkerSampler, byzantine: WorkerSampler | None,
          poison: Callable | None, num_classes: int | None) -> None:
    """A worker rank's loop: answer the server's commands until it says stop (or stops answering)."""
    params = model.get()
    flat = _flat_state(model.module, params).to(connection.device)
    header = torch.zeros(2, dtype=torch.int64)
    while True:
        command, argument = _server_command(header, connection)
        if command == STOP:
            return
        if command in (COMPUTE, BYZANTINE):
            _load_flat_state(model.module, params, _recv_from_server(flat, connection, "the parameters"))
            if command == COMPUTE:
                start = time.perf_counter()
                inputs, targets = honest.sample()
                gradients, losses = engine.gradients(inputs, targets)
                buffers = [torch.stack([b.detach().reshape(-1).double()] * len(gradients))
                           for b in model.module.buffers()]
                seconds = torch.full((len(gradients), 1), time.perf_counter() - start, dtype=torch.float64)
                rows = torch.cat([gradients.double(), losses.double()[:, None], *buffers, seconds], dim=1)
            else:
                inputs, targets = byzantine.sample()
                if argument and poison is not None:
                    inputs, targets = poison(inputs, targets, num_classes)
                rows = engine.gradients(inputs, targets, update_buffers=False)[0].double()
            _send(rows.to(connection.device), 0)
        elif command == STATE:
            _send_bytes(_dumps({"engine": engine.state_dict(), "sampler": honest.state_dict(),
                                "byzantine": byzantine.state_dict() if byzantine else None}), 0)
        elif command == LOAD:
            state = _loads(_recv_bytes(0, connection.timeout, "a state"))
            engine.load_state_dict(state["engine"])
            honest.load_state_dict(state["sampler"])
            if byzantine:
                byzantine.load_state_dict(state["byzantine"])


def _server_command(header: torch.Tensor, connection: Connection) -> tuple[int, int]:
    try:
        dist.irecv(header, 0).wait(connection.timeout)
    except Exception as err:
        raise UserException(f"Worker rank {connection.rank}: the server (rank 0) sent nothing within "
                            f"{connection.timeout.total_seconds():g} s: {_reason(err)}") from None
    command, argument = header.tolist()
    return int(command), int(argument)


def _recv_from_server(like: torch.Tensor, connection: Connection, what: str) -> torch.Tensor:
    try:
        dist.irecv(like, 0).wait(connection.timeout)
    except Exception as err:
        raise UserException(f"Worker rank {connection.rank}: the server did not send {what} within "
                            f"{connection.timeout.total_seconds():g} s: {_reason(err)}") from None
    return like
