"""What every gradient engine shares.

An engine turns stacked per-worker batches (inputs [k, b, *shape], labels
[k, b]) into per-worker flat gradients [k, d] (in the order of `model.get()`)
and per-worker mean losses [k], at the model's current parameters (or, with
``at``, at each worker's own flat parameters [k, d]: Nesterov's look-ahead
points), in training mode. Two rules hold for every engine:

- Batch-norm running statistics: each worker's batch updates its own copy of
  the running buffers, starting from the same values; with
  ``update_buffers=True`` the module's buffers become the average of the k
  updated copies (integer counters advance once), so one call moves the
  running statistics once, from all k workers. With ``update_buffers=False``
  the buffers are left untouched (the run loop uses it for Byzantine batches).
- Randomness (dropout): the engine owns a CPU `torch.Generator` seeded from
  `seed`. Each call draws one seed from it, seeds the global RNG of the
  model's device with it inside `torch.random.fork_rng`, and restores the
  global state afterwards, so the same seed gives the same dropout masks and
  the caller's global RNG is never changed. Its state is in `state_dict()`.

`clipped_gradients` is DP-SGD's per-sample form of `gradients` (each sample's
gradient clipped before the sum), and `local_updates(..., private=...)` takes
it at every local step; each engine computes it in its own batched way
(`_clipped_pass`), with the batch-norm buffers untouched (a model with batch
norm has no per-sample gradients and is refused before, `per_sample_unsupported`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from experiments.tools import UserException

__all__ = ["Engine", "LossFn", "module_of", "split_rows", "flat_parameter_names", "seeded_global_rng", "local_step", "chunked",
           "chunked_local_steps", "PrivateSteps", "clip_factors", "per_sample_unsupported"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PrivateSteps:
    """DP-SGD at every local step of a federated round (Abadi et al., "Deep Learning with Differential Privacy",
    CCS 2016, Algorithm 1): the step's gradient is the sum of the batch's per-sample gradients, each clipped to
    norm ``clip``, plus that step's ``noise``, divided by the batch size; l2, clipping and momentum follow."""

    clip: float
    noise: torch.Tensor  # [m, K, d]: each client's Gaussian noise at each local step (std sigma clip)


class Engine:
    """Per-worker gradients of one shared model; subclasses implement `_compute`."""

    name: str = "engine"

    def __init__(self, model, loss_fn: LossFn, *, chunk_size: int | None = None, seed: int = 0) -> None:
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise UserException(f"The engine chunk size must be a positive integer, got {chunk_size!r}.")
        self.model, self.loss_fn, self.chunk_size = model, loss_fn, chunk_size
        self.module = module_of(model)
        self.dimension = sum(p.numel() for p in self.module.parameters())
        self.generator = torch.Generator().manual_seed(int(seed))
        named = dict(self.module.named_parameters())
        self.order = flat_parameter_names(model)
        self.params = [named[name] for name in self.order]  # in the flat order

    def gradients(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool = True,
                  at: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat gradients [k, d] and mean losses [k] of k workers' batches ([k, b, *shape], [k, b]).

        ``at`` [k, d]: each worker's gradient is taken at its own flat parameters instead of the model's.
        """
        if inputs.dim() < 2 or targets.dim() < 2 or inputs.shape[:2] != targets.shape[:2]:
            raise UserException("Engine inputs must be stacked as [workers, batch, ...] with labels [workers, batch].")
        if at is None:
            return self._in_training(self._compute, inputs, targets, update_buffers=update_buffers)
        if at.shape != (inputs.shape[0], self.dimension):
            raise UserException(f"Per-worker parameters must be [{inputs.shape[0]}, {self.dimension}], "
                                f"got {list(at.shape)}.")
        return self._in_training(self._compute_at, inputs, targets, split_rows(at, self.params),
                                 update_buffers=update_buffers)

    def clipped_gradients(self, inputs: torch.Tensor, targets: torch.Tensor, *, clip: float,
                          at: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-worker sums of per-sample gradients, each clipped to l2 norm ``clip`` ([k, d], flat order), and
        mean losses [k]: DP-SGD's sum before its noise (Abadi et al., CCS 2016, Algorithm 1).

        Sample j of worker i contributes g_ij min(1, clip / ||g_ij||), g_ij the gradient of its own loss (not
        divided by b). ``at`` as in `gradients`. Batch-norm buffers never move (such models are refused).
        """
        if inputs.dim() < 2 or targets.dim() < 2 or inputs.shape[:2] != targets.shape[:2]:
            raise UserException("Engine inputs must be stacked as [workers, batch, ...] with labels [workers, batch].")
        params = None if at is None else split_rows(at, self.params)
        return self._in_training(self._clipped, inputs, targets, params, clip=clip)

    def _clipped(self, inputs: torch.Tensor, targets: torch.Tensor, params: list[torch.Tensor] | None, *,
                 clip: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`clipped_gradients`, a chunk of workers at a time (`chunked`) through `_clipped_pass`."""
        shared = [p.detach() for p in self.params]

        def rows_of(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:
            own = shared if params is None else [p[rows] for p in params]
            return self._clipped_pass(own, params is None, inputs[rows], targets[rows], clip)

        return chunked(self, inputs.shape[0], seed, rows_of)

    def _clipped_pass(self, params: list[torch.Tensor], shared: bool, inputs: torch.Tensor, targets: torch.Tensor,
                      clip: float) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Clipped per-sample sums ([k, *shape] per parameter, flat order) and mean losses [k] of k workers.

        ``params``: the model's parameters ([*shape] each, ``shared``) or each worker's own ([k, *shape]).
        """
        raise NotImplementedError

    def _in_training(self, compute: Callable, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        """``compute(*args, **kwargs, seed=...)`` in training mode, with the next seed of the engine's generator."""
        seed = int(torch.randint(2**62, (1,), generator=self.generator))
        was_training = self.module.training
        self.module.train()
        try:
            return compute(*args, **kwargs, seed=seed)
        finally:
            self.module.train(was_training)

    def _compute(self, inputs: torch.Tensor, targets: torch.Tensor, *, update_buffers: bool,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _compute_at(self, inputs: torch.Tensor, targets: torch.Tensor, params: list[torch.Tensor], *,
                    update_buffers: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`_compute` with per-worker parameters ``params`` ([k, *shape] each, in the flat order)."""
        raise NotImplementedError

    def local_updates(self, inputs: torch.Tensor, targets: torch.Tensor, *, lr: float, momentum: float = 0.0,
                      l2: float = 0.0, clip: float | None = None, update_buffers: bool = True,
                      private: PrivateSteps | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Federated clients' updates: K local SGD steps each from the model's parameters.

        ``inputs [m, K, b, *shape]`` and ``targets [m, K, b]`` hold each of m clients'
        batch for each of its K local steps. Each client starts from the model's
        current parameters w and takes K steps of w <- w - lr * s, where s is its
        gradient plus ``l2 * w``, clipped to norm ``clip``, through local heavy-ball
        momentum (``v <- momentum * v + g``, started at zero every round). Returns
        the updates w_K - w [m, d] in the order of `model.get()` and each client's
        mean loss over its steps [m]; the model's parameters are left as they
        were, its batch-norm buffers move as in `gradients`. With ``private``, each step's gradient is DP-SGD's
        (`PrivateSteps`) before the l2 term, ``clip`` and momentum.
        """
        if inputs.dim() < 3 or targets.dim() < 3 or inputs.shape[:3] != targets.shape[:3]:
            raise UserException("Local steps need batches stacked as [clients, steps, batch, ...] with labels "
                                "[clients, steps, batch].")
        extra = {} if private is None else {"private": private}
        return self._in_training(self._local, inputs, targets, lr=lr, momentum=momentum, l2=l2, clip=clip,
                                 update_buffers=update_buffers, **extra)

    def _local(self, inputs: torch.Tensor, targets: torch.Tensor, *, lr: float, momentum: float, l2: float,
               clip: float | None, update_buffers: bool, seed: int,
               private: PrivateSteps | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _private_steps(self, inputs: torch.Tensor, targets: torch.Tensor,
                       private: PrivateSteps) -> "ClientGradients":
        """The per-client gradients of `chunked_local_steps` under DP-SGD: clipped sums plus noise, over b."""
        b = inputs.shape[2]

        def gradients(params: list[torch.Tensor], rows: slice, k: int) -> tuple[list[torch.Tensor], torch.Tensor]:
            sums, loss = self._clipped_pass(params, False, inputs[rows, k], targets[rows, k], private.clip)
            noise = split_rows(private.noise[rows, k], self.params)
            return [(s + z).div_(b) for s, z in zip(sums, noise)], loss

        return gradients

    def state_dict(self) -> dict:
        """The generator's state and the chunk size: a resumed run draws the same dropout masks in the same chunks."""
        return {"generator": self.generator.get_state(), "chunk_size": self.chunk_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore the generator, and the chunk size the run started with (one chosen from a GPU's free memory
        may come out differently on the machine that resumes it)."""
        self.generator.set_state(state["generator"])
        self.chunk_size = state.get("chunk_size", self.chunk_size)  # absent from checkpoints before chunking

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device


def split_rows(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Rows of flat vectors [k, d] as per-parameter views [k, *p.shape] for the parameters ``like`` (flat order)."""
    pieces = flat.split([p.numel() for p in like], dim=1)
    return [piece.reshape(flat.shape[0], *p.shape) for piece, p in zip(pieces, like)]


def module_of(model) -> torch.nn.Module:
    """The plain `torch.nn.Module` of an `experiments.Model` (or the module itself)."""
    module = model if isinstance(model, torch.nn.Module) else getattr(model, "module", None)
    if not isinstance(module, torch.nn.Module):
        raise UserException(f"An engine needs an experiments.Model or a torch.nn.Module, got {type(model).__name__}.")
    if next(module.parameters(), None) is None:
        raise UserException("The model has no parameters to compute gradients for.")
    return module


def flat_parameter_names(model) -> list[str]:
    """Parameter names in the order of the model's flat vector `model.get()`.

    The parameters of an `experiments.Model` are views into the flat vector: their
    storage offsets give the order. A plain module uses `named_parameters()` order.
    """
    module = module_of(model)
    named = list(module.named_parameters())
    flat = model.get() if hasattr(model, "get") else None
    if flat is None:
        return [name for name, _ in named]
    size = flat.element_size()
    offsets = {name: (p.data_ptr() - flat.data_ptr()) // size for name, p in named}
    order = sorted(named, key=lambda item: offsets[item[0]])
    expected = 0
    for name, p in order:
        if offsets[name] != expected:
            raise UserException("The model's parameters are not laid out contiguously in its flat vector.")
        expected += p.numel()
    if expected != flat.numel():
        raise UserException("The model's flat vector does not hold exactly its parameters.")
    return [name for name, _ in order]


@contextlib.contextmanager
def seeded_global_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Seed the global RNG of `device` (and the CPU's) for the block, then restore both."""
    forked = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.default_generator.manual_seed(seed)
        if device.type == "cuda":
            with torch.cuda.device(forked[0]):
                torch.cuda.manual_seed(seed)
        yield


def batched_buffers(module: torch.nn.Module, k: int) -> dict[str, torch.Tensor]:
    """One writable copy of every buffer per worker: {name: [k, *shape]}."""
    return {name: b.detach().unsqueeze(0).repeat(k, *([1] * b.dim())) for name, b in module.named_buffers()}


def store_buffer_average(module: torch.nn.Module, copies: dict[str, torch.Tensor]) -> None:
    """Set every buffer to the mean of its per-worker copies (integer counters: the first copy)."""
    with torch.no_grad():
        for name, b in module.named_buffers():
            b.copy_(copies[name].mean(dim=0) if b.is_floating_point() else copies[name][0])


def local_step(params: list[torch.Tensor], grads: list[torch.Tensor], velocity: list[torch.Tensor] | None, *,
               lr: float, momentum: float, l2: float, clip: float | None) -> None:
    """One local SGD step for a batch of clients (dim 0 of every tensor), updating ``params`` in place.

    The gradient gets ``l2 * params``, is clipped per client to norm ``clip``, goes
    through heavy-ball ``velocity`` (updated in place) when ``momentum``, and the
    parameters move by ``-lr`` times it. Shared by every engine, so all take the
    same arithmetic steps.
    """
    if l2:
        grads = [g.add(p, alpha=l2) for g, p in zip(grads, params)]
    if clip is not None:
        norms = torch.stack([g.reshape(len(g), -1).square().sum(dim=1) for g in grads]).sum(dim=0).sqrt()
        scale = (clip / norms).clamp(max=1.0).nan_to_num(nan=0.0)
        grads = [g * scale.view(-1, *([1] * (g.dim() - 1))) for g in grads]
    if momentum:
        for v, g in zip(velocity, grads):
            v.mul_(momentum).add_(g)
        grads = velocity
    for p, g in zip(params, grads):
        p.sub_(g, alpha=lr)


def chunked(engine: "Engine", count: int, seed: int,
            rows_of: Callable[[slice], tuple[list[torch.Tensor], torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat rows [count, d] and losses [count] of ``count`` workers, a chunk of them at a time, under ``seed``.

    ``rows_of(rows)`` gives the per-parameter tensors ([len(rows), *shape] each, in the flat order) and the
    losses of workers ``rows``; they are concatenated into the rows of the result.
    """
    dtype = engine.params[0].dtype
    out = torch.empty(count, engine.dimension, dtype=dtype, device=engine.device)
    losses = torch.empty(count, dtype=dtype, device=engine.device)
    chunk = engine.chunk_size or count
    with seeded_global_rng(engine.device, seed):
        for first in range(0, count, chunk):
            rows = slice(first, min(first + chunk, count))
            pieces, loss = rows_of(rows)
            torch.cat([p.reshape(rows.stop - rows.start, -1) for p in pieces], dim=1, out=out[rows])
            losses[rows] = loss.detach()
    return out, losses


ClientGradients = Callable[[list[torch.Tensor], slice, int], tuple[list[torch.Tensor], torch.Tensor]]


def chunked_local_steps(engine: "Engine", inputs: torch.Tensor, gradients: ClientGradients, *, lr: float,
                        momentum: float, l2: float, clip: float | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K local steps of every client, a chunk of clients at a time (`chunked`), each with per-client parameters.

    ``gradients(params, rows, k)`` gives the per-client gradients (in the flat order) and losses of clients
    ``rows`` at their parameters, on their k-th batch. Returns the updates [m, d] and mean losses [m].
    """
    steps = inputs.shape[1]
    start = [p.detach() for p in engine.params]

    def updates(rows: slice) -> tuple[list[torch.Tensor], torch.Tensor]:
        count = rows.stop - rows.start
        params = [p.unsqueeze(0).repeat(count, *([1] * p.dim())) for p in start]
        velocity = [torch.zeros_like(p) for p in params] if momentum else None
        losses = torch.zeros(count, dtype=start[0].dtype, device=engine.device)
        for k in range(steps):
            grads, loss = gradients(params, rows, k)
            local_step(params, grads, velocity, lr=lr, momentum=momentum, l2=l2, clip=clip)
            losses += loss.detach()
        return [p - p0 for p, p0 in zip(params, start)], losses / steps

    return chunked(engine, inputs.shape[0], seed, updates)


def clip_factors(squared_norms: torch.Tensor, clip: float) -> torch.Tensor:
    """min(1, clip / ||g||) from squared per-sample norms (a zero gradient keeps factor 1; a NaN one gets 0)."""
    return (clip / squared_norms.sqrt()).clamp(max=1.0).nan_to_num(nan=0.0)


def per_sample_unsupported(module: nn.Module) -> str | None:
    """Why no engine has per-sample gradients of ``module``, or None: batch norm normalises each sample with
    its batch's statistics, so a sample's gradient depends on the others' and clipping it bounds nothing
    (Opacus refuses it for the same reason)."""
    found = sorted({type(m).__name__ for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)})
    return f"this model has {', '.join(found)}" if found else None
