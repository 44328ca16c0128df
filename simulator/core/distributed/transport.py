"""The process group, the workers' layout over it, and its messages: tensors, commands, bytes, model state.

Sends block (bounded by the group's timeout), receives wait at most ``Connection.timeout``; a failure raises
a one-line `UserException` naming the silent rank.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from experiments.tools import UserException
from simulator.core.config import Config

COMPUTE, BYZANTINE, STATE, LOAD, STOP = 1, 2, 3, 4, 5  # the server's commands


@dataclass(frozen=True)
class Connection:
    """This process's place in the process group."""

    rank: int
    world: int
    device: torch.device
    timeout: datetime.timedelta

    @property
    def ranks(self) -> range:
        """The worker ranks: all but the server."""
        return range(1, self.world)


def layout(c: Config, connection: Connection) -> tuple[list[range], list[range] | None]:
    """Which workers each worker rank holds (rank r + 1 takes slice r): contiguous, balanced slices of the
    honest workers, none empty, and of the Byzantine workers when they compute on the ranks (else None)."""
    def slices(count: int) -> list[range]:
        bounds = np.linspace(0, count, connection.world).round().astype(int)
        return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    honest = slices(c.nb_honest)
    if any(len(part) == 0 for part in honest):
        raise UserException(f"{connection.world - 1} worker ranks for {c.nb_honest} honest workers: every rank "
                            f"needs at least one; launch at most {c.nb_honest + 1} processes.")
    return honest, slices(c.real_byz) if c.parts["execution"].byzantine == "ranks" else None


def backend(cuda: bool) -> str:
    """gloo on CPU; on GPUs NCCL for the CUDA tensors (parameters, gradients) and gloo for the CPU ones
    (command headers, sizes, checkpoint bytes), which NCCL does not carry."""
    return "cpu:gloo,cuda:nccl" if cuda else "gloo"


def connect(timeout: float, device: str) -> Connection:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``...), or say in one line why not."""
    missing = [name for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise UserException(f"Execution torchrun runs under torchrun (it sets {', '.join(missing)}): e.g. "
                            "torchrun --standalone --nproc-per-node=3 -m simulator train ... --execution torchrun.")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if world < 2:
        raise UserException("Execution torchrun needs at least 2 processes: the server and one worker rank.")
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
                                f"{reason(err)}") from None
    return Connection(rank, world, local, span)


def leave() -> None:
    """Leave the process group (a no-op when not in one)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def reason(err: Exception) -> str:
    """The first line of a transport error (torch's can run to pages), at most 300 characters."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def send(tensor: torch.Tensor, dst: int) -> None:
    """Send to ``dst`` (blocking, bounded by the group's timeout), or raise naming the rank."""
    try:
        dist.send(tensor.contiguous(), dst)
    except Exception as err:  # the peer died (connection closed) or hangs (send timed out)
        who = "The server (rank 0)" if dst == 0 else f"Worker rank {dst}"
        raise UserException(f"{who} did not take a message (it died or hangs): {reason(err)}") from None


def receive(like: torch.Tensor, src: int, connection: Connection, what: str) -> torch.Tensor:
    """Receive into ``like`` from ``src`` within the timeout, or raise naming both ranks."""
    try:
        dist.irecv(like, src).wait(connection.timeout)
    except Exception as err:
        who = f"Worker rank {connection.rank}: the server (rank 0)" if src == 0 else f"Worker rank {src}"
        raise UserException(f"{who} did not send {what} within {connection.timeout.total_seconds():g} s "
                            f"(it died or hangs): {reason(err)}") from None
    return like


def send_command(command: int, dst: int, argument: int = 0) -> None:
    """Send the server's command (one of COMPUTE, BYZANTINE, STATE, LOAD, STOP) to worker rank ``dst``."""
    send(torch.tensor([command, argument], dtype=torch.int64), dst)


def send_bytes(data: bytes, dst: int) -> None:
    """Send its size, then the bytes (a rank's state)."""
    send(torch.tensor([len(data)], dtype=torch.int64), dst)
    send(torch.frombuffer(bytearray(data), dtype=torch.uint8), dst)


def receive_bytes(src: int, connection: Connection, what: str) -> bytes:
    """What `send_bytes` sent."""
    size = int(receive(torch.zeros(1, dtype=torch.int64), src, connection, what))
    return bytes(receive(torch.empty(size, dtype=torch.uint8), src, connection, what).numpy())


def flat_state(module: torch.nn.Module, params: torch.Tensor) -> torch.Tensor:
    """The parameters, then every buffer, as one float64 vector (integer counters are exact below 2^53)."""
    buffers = [b.detach().reshape(-1).double() for b in module.buffers()]
    return torch.cat([params.detach().double(), *buffers])


def load_flat_state(module: torch.nn.Module, params: torch.Tensor, flat: torch.Tensor) -> None:
    """Set the parameters and buffers from a `flat_state` vector."""
    pieces = flat.split([params.numel(), *(b.numel() for b in module.buffers())])
    with torch.no_grad():
        for target, piece in zip([params, *module.buffers()], pieces):
            target.copy_(piece.view_as(target))
