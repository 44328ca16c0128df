"""The parts of a run that the `Simulation` and a distributed run's worker ranks both build: functions of the
config and the device, seeded by named streams, so a rank building its slice of the workers gets what one
process has."""
from __future__ import annotations

import torch

from experiments import Configuration, Model, datasets
from experiments.loss import LOSSES
from experiments.tools import UserException
from simulator.core.config import Config
from simulator.core.engines import Engine
from simulator.core.engines.memory import chunk_for, default_budget, worker_bytes
from simulator.core.flips import FlippingSampler
from simulator.core.heterogeneity import partition
from simulator.core.sampler import WorkerSampler
from simulator.core.seeding import derive_seed, generator

__all__ = ["training_set", "root_set", "samplers", "root_sampler", "build_model", "build_engine"]

Pair = tuple[torch.Tensor, torch.Tensor]


def training_set(c: Config, device: torch.device) -> tuple[Pair, list[torch.Tensor], Pair | None]:
    """The training set on ``device``, its partition among the honest workers, and the validation set (or None).

    The validation set is held out before the split among workers, the same for every lr of a seed; the server's
    root set (`root_set`), when the rule holds one, is left out of the split.
    """
    train_x, train_y = datasets.load_tensors(c.dataset_name, True, c.data_root,
                                             normalise=c.parts["dataset"].normalise)
    validation = None
    if c.validation_split:
        order = torch.randperm(len(train_y), generator=generator(c.seed, "validation"))
        held, kept = order[:int(c.validation_split * len(train_y))], order[int(c.validation_split * len(train_y)):]
        if len(held) == 0:
            raise UserException(f"validation_split {c.validation_split} holds out no sample of "
                                f"the {len(train_y)} training samples.")
        validation = (train_x[held].to(device), train_y[held].to(device))
        train_x, train_y = train_x[kept], train_y[kept]
    root = root_set(c, len(train_y))
    if root is None:
        parts = partition(train_y, c.nb_honest, c.parts["heterogeneity"], generator(c.seed, "partition"))
    else:  # the workers split what the server does not hold; their indices still point into the whole set
        kept = torch.ones(len(train_y), dtype=torch.bool)
        kept[root] = False
        kept = kept.nonzero().flatten()
        parts = [kept[part] for part in partition(train_y[kept], c.nb_honest, c.parts["heterogeneity"],
                                                  generator(c.seed, "partition"))]
    return (train_x.to(device), train_y.to(device)), parts, validation


def root_set(c: Config, size: int) -> torch.Tensor | None:
    """The sorted indices, among ``size`` training samples, of the server's root set (FLTrust's clean data), or None.

    Its size is the rule's (`Rule.root_set_size`); it is drawn uniformly from the run's "root" stream, after the
    validation split, and the honest workers never see it.
    """
    wanted = c.parts["aggregator"].root_set_size()
    if not wanted:
        return None
    if wanted >= size:
        raise UserException(f"{c.aggregator} holds out a root set of {wanted} training samples for the server, "
                            f"but the training set has only {size}: leave some to the workers.")
    return torch.randperm(size, generator=generator(c.seed, "root"))[:wanted].sort().values


def samplers(c: Config, train: Pair, parts: list[torch.Tensor], honest: range | None = None,
             byzantine: range | None = None) -> tuple[WorkerSampler, WorkerSampler | None]:
    """The honest workers' sampler over their partitions and the Byzantine workers' (None without any).

    All workers, or the slices ``honest`` and ``byzantine`` of them, drawing what those draw in one process.
    Byzantine workers that compute gradients draw iid from the whole training set. With ``dataset(flip=true)``
    each kind of worker flips its samples from a stream of its own (`simulator.core.flips`).
    """
    honest = range(len(parts)) if honest is None else honest
    byzantine = range(c.real_byz) if byzantine is None else byzantine
    everything = [torch.arange(len(train[1]))] * len(byzantine)
    return (_sampler(c, train, ("sampler", "flip"), parts[honest.start:honest.stop], honest, len(parts)),
            _sampler(c, train, ("byzantine sampler", "byzantine flip"), everything, byzantine, c.real_byz)
            if everything else None)


def root_sampler(c: Config, train: Pair, root: torch.Tensor) -> WorkerSampler:
    """The server's batches from its root set, drawn as a worker draws from its partition, from streams of its own."""
    return _sampler(c, train, ("root sampler", "root flip"), [root], range(1), 1)


def _sampler(c: Config, train: Pair, streams: tuple[str, str], own: list[torch.Tensor], workers: range,
             total: int) -> WorkerSampler:
    """A sampler of ``workers`` over their index sets ``own``, seeded from the streams (batches, flips) named."""
    seed = derive_seed(c.seed, streams[0])
    if not c.parts["dataset"].flip:
        return WorkerSampler(*train, own, c.batch_size, seed, first=workers.start)
    return FlippingSampler(*train, own, c.batch_size, seed, first=workers.start,
                           flips=generator(c.seed, streams[1]), total=total)


def build_model(c: Config, device: torch.device) -> Model:
    """The run's model on ``device``, from its seeded initialisation (which leaves the global RNG alone)."""
    name, params = c.parts.get("model") or (c.model_name, {})  # model_name raises when there is no model
    kwargs = {"num_classes": datasets.num_classes(c.dataset_name), **params}
    try:
        return Model(name, Configuration(device=device, dtype=torch.float32),
                     init_seed=derive_seed(c.seed, "model"), **kwargs)
    except TypeError as err:
        raise UserException(f"Model {c.model_name!r} does not accept these arguments: {err}.") from None


def build_engine(c: Config, model: Model, train: Pair, device: torch.device) -> Engine:
    """This process's gradient engine: the run's, on the server and on every torchrun rank alike.

    Its chunk size is the engine's chunk_size, or the most workers whose batched pass fits its memory budget
    (with per-sample clipping, each worker's b per-sample gradients counted too: the vmap engine holds them).
    """
    inputs, targets, choice = *train, c.parts["engine"]
    chunk = getattr(choice, "chunk_size", None)
    budget = default_budget(device, getattr(choice, "memory_budget", None))
    if chunk is None and budget is not None:
        per_worker = worker_bytes(model.module, inputs[:c.batch_size], targets[:c.batch_size], LOSSES[c.loss])
        if c.parts["privacy"].per_sample:
            per_worker += c.batch_size * model.get().numel() * model.get().element_size()
        chunk = chunk_for(budget, per_worker, c.per_round)
    return choice.make(model, LOSSES[c.loss], chunk_size=chunk, seed=derive_seed(c.seed, "engine"),
                       probe=(inputs[:2], targets[:2]))
