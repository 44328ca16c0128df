"""A worker rank: build its slice of the workers, then answer the server's commands until it says stop."""
from __future__ import annotations

import io
import time

import torch

import attacks
from attacks.base import DataAttack
from experiments import datasets
from simulator.core.build import build_engine, build_model, samplers, training_set
from simulator.core.config import Config
from simulator.core.distributed.transport import (COMPUTE, LOAD, STATE, STOP, Connection, flat_state, layout,
                                                   leave, load_flat_state, receive, receive_bytes, send, send_bytes)
from simulator.core.workers import LocalWorkers


def serve_rank(c: Config, connection: Connection) -> None:
    """Build this rank's slice of the workers (samplers seeded as in one process, the model, an engine on its
    device) and compute their gradients when the server asks, until it says stop."""
    honest_slices, byzantine_slices = layout(c, connection)
    train, parts, _ = training_set(c, connection.device)
    mine = connection.rank - 1
    honest, byzantine = samplers(c, train, parts, honest_slices[mine],
                                 byzantine_slices[mine] if byzantine_slices else range(0))
    model = build_model(c, connection.device)
    workers = LocalWorkers(build_engine(c, model, train, connection.device), honest, byzantine,
                           datasets.num_classes(c.dataset_name))
    attack = attacks.get(c.attack)
    poison = attack.poison if isinstance(attack, DataAttack) else None
    params = model.get()
    flat = flat_state(model.module, params).to(connection.device)
    try:
        while True:
            command, argument = receive(torch.zeros(2, dtype=torch.int64), 0, connection, "a command").tolist()
            if command == STOP:
                return
            if command == STATE:
                buffer = io.BytesIO()
                torch.save(workers.state_dict(), buffer)
                send_bytes(buffer.getvalue(), 0)
            elif command == LOAD:
                state = torch.load(io.BytesIO(receive_bytes(0, connection, "a state")), map_location="cpu",
                                   weights_only=False)
                workers.load_state_dict({"byzantine_sampler": state.get("byzantine"), **state})  # or older names
            elif command == COMPUTE:
                load_flat_state(model.module, params, receive(flat, 0, connection, "the parameters"))
                start = time.perf_counter()
                gradients, losses = workers.honest()
                buffers = [b.detach().reshape(1, -1).double().expand(len(gradients), -1)
                           for b in model.module.buffers()]
                seconds = torch.full((len(gradients), 1), time.perf_counter() - start, dtype=torch.float64,
                                     device=gradients.device)
                send(torch.cat([gradients.double(), losses.double()[:, None], *buffers, seconds], dim=1), 0)
            else:  # BYZANTINE: their own batches, poisoned if the server says so
                load_flat_state(model.module, params, receive(flat, 0, connection, "the parameters"))
                send(workers.byzantine(poison if argument else None).double(), 0)
    finally:
        leave()
