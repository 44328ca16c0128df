"""The `distributed` engine: the honest workers on other torch.distributed ranks (see docs/engines.md).

Rank 0, the server, runs the simulation as in one process but asks ranks 1..R
for the honest workers' gradients (`proxy.RemoteWorkers`). Each worker rank
builds only its slice of the workers (`rank.serve_rank`): their samplers,
seeded as in one process, so they draw the same batches, and an engine on its
own device; the Byzantine workers' too when they compute on the ranks.
Messages are point to point, every receive bounded by the timeout, so a dead
or hung rank stops the run, named, within it (`transport`); started again, the
run resumes from its last checkpoint, each rank's state included.
"""
from __future__ import annotations

from simulator.core.distributed.proxy import RemoteWorkers, stop_ranks
from simulator.core.distributed.rank import serve_rank
from simulator.core.distributed.transport import Connection, backend, connect

__all__ = ["Connection", "backend", "connect", "RemoteWorkers", "serve_rank", "stop_ranks"]
