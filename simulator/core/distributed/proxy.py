"""Rank 0's stand-in for the workers: `RemoteWorkers` asks the worker ranks for their gradients."""
from __future__ import annotations

import time

import torch

from attacks.base import Poison
from experiments import Model
from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.distributed.transport import (BYZANTINE, COMPUTE, LOAD, STATE, STOP, Connection, flat_state,
                                                   layout, leave, receive, receive_bytes, send, send_bytes,
                                                   send_command)
from simulator.core.engines.base import store_buffer_average
from simulator.core.workers import LocalWorkers


class RemoteWorkers:
    """Rank 0's view of the worker ranks, with the interface of `LocalWorkers`; ``local`` computes what stays
    on the server (the Byzantine workers' gradients, unless they are on the ranks)."""

    name = "distributed"

    def __init__(self, connection: Connection, config: Config, model: Model, local: LocalWorkers) -> None:
        self.connection, self.model, self.module, self.local = connection, model, model.module, local
        self.honest_slices, self.byzantine_slices = layout(config, connection)
        self.dimension = model.get().numel()
        self.timing = {"compute": 0.0, "communication": 0.0}  # seconds, of the last honest() call

    def _ask(self, command: int, ranks: list[int], argument: int = 0) -> None:
        """Send ``ranks`` the command and the current parameters and buffers."""
        flat = flat_state(self.module, self.model.get()).to(self.connection.device)
        for r in ranks:
            send_command(command, r, argument)
            send(flat, r)

    def _gather(self, parts: list[range], width: int, what: str) -> torch.Tensor:
        """The rows that the ranks holding some of ``parts`` send, in rank order, on the CPU."""
        return torch.cat([receive(torch.empty(len(part), width, dtype=torch.float64, device=self.connection.device),
                                  rank, self.connection, what).cpu()
                          for rank, part in enumerate(parts, start=1) if len(part)])

    def honest(self, rows: None = None, local: None = None, at: None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every honest worker's gradients (no pools, local steps or look-ahead points: federated rounds and
        look-ahead Nesterov run in one process)."""
        start = time.perf_counter()
        self._ask(COMPUTE, list(self.connection.ranks))
        sizes = [b.numel() for b in self.module.buffers()]
        rows = self._gather(self.honest_slices, self.dimension + 2 + sum(sizes), "its workers' gradients")
        gradients, losses, *buffers, seconds = rows.split([self.dimension, 1, *sizes, 1], dim=1)
        compute = float(seconds.max())  # the slowest rank's sampling and gradients
        self.timing = {"compute": compute, "communication": time.perf_counter() - start - compute}
        if buffers:  # each set to its mean over the honest workers
            store_buffer_average(self.module, {name: piece.reshape(-1, *b.shape).to(b.dtype) for (name, b), piece
                                               in zip(self.module.named_buffers(), buffers)})
        return gradients.to(self.model.get()), losses[:, 0].to(self.model.get())

    def byzantine(self, poison: Poison | None, rows: None = None, local: None = None, at: None = None) -> torch.Tensor:
        """The Byzantine workers' gradients, from the ranks holding them (or the server's engine)."""
        if self.byzantine_slices is None:
            return self.local.byzantine(poison)
        self._ask(BYZANTINE, [r for r, part in enumerate(self.byzantine_slices, start=1) if len(part)],
                  int(poison is not None))
        rows = self._gather(self.byzantine_slices, self.dimension, "its Byzantine workers' gradients")
        return rows.to(self.model.get())

    def state_dict(self) -> dict:
        """Every rank's state (bytes) and the server's own engine and Byzantine sampler."""
        for r in self.connection.ranks:
            send_command(STATE, r)
        states = [receive_bytes(r, self.connection, "its state") for r in self.connection.ranks]
        local = self.local.state_dict()
        return {"engine_name": self.name, "engine": {"ranks": states, "local": local["engine"]},
                "sampler": None, "byzantine_sampler": local["byzantine_sampler"]}

    def load_state_dict(self, state: dict) -> None:
        saved = state["engine"]["ranks"]
        if len(saved) != len(self.connection.ranks):
            raise UserException(f"This checkpoint was written with {len(saved)} worker ranks, "
                                f"not {len(self.connection.ranks)}: resume it with as many processes as before.")
        for r, data in zip(self.connection.ranks, saved):
            send_command(LOAD, r)
            send_bytes(data, r)
        self.local.load_state_dict({"engine": state["engine"]["local"], "sampler": None,
                                    "byzantine_sampler": state["byzantine_sampler"]})


def stop_ranks(connection: Connection) -> None:
    """Tell every worker rank to stop (best effort: a dead rank is not waited for), then leave the group."""
    for r in connection.ranks:
        try:
            send_command(STOP, r)
        except Exception:  # that rank is gone already
            pass
    leave()
