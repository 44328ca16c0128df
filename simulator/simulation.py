"""One simulated run in memory: its parts, one training step, one evaluation.

A step, as design.md describes it: every worker samples a batch from its own
partition; the engine computes the honest gradients; workers add l2, clip and
apply momentum; the attack produces the Byzantine vectors (a data attack
poisons the Byzantine workers' batches instead, whose gradients are then
computed honestly); the aggregator chain combines the n vectors (honest
first, Byzantine last); the server applies the update.
"""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F

import aggregators
import attacks
from attacks.base import AttackContext
from experiments import Configuration, Criterion, Model, Optimizer
from experiments import datasets
from experiments.tools import UserException
from simulator.config import Config
from simulator.engines import make_engine
from simulator.metrics import step_metrics
from simulator.optim import Momentum
from simulator.partition import partition
from simulator.sampler import WorkerSampler
from simulator.schedule import learning_rate
from simulator.seeding import derive_seed, generator

LOSSES = {"crossentropy": F.cross_entropy, "nll": F.nll_loss}
HETEROGENEITY_PARAMS = {"dirichlet": ("alpha",), "gamma": ("gamma",)}


def resolve_device(name: str) -> torch.device:
    """The torch device for `name`, with a clear error when it is unusable."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserException(f"Unknown device {name!r}: use e.g. cpu, cuda or cuda:1.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserException(f"Device {name!r} was asked for but CUDA is not available here.")
    return device


class Simulation:
    """Holds every part of one run; `step()` trains once, `evaluate()` tests."""

    def __init__(self, config: Config):
        c = self.config = config.validate()
        self.device = resolve_device(c.device)
        self.aggregator = aggregators.get(c.aggregator, generator=generator(c.seed, "aggregator"), **c.aggregator_args)
        self.aggregator.check(c.nb_workers, c.nb_decl_byz)
        self.attack = attacks.get(c.attack, **c.attack_args)
        self.attack_generator = generator(c.seed, "attack")
        self.num_classes = datasets.num_classes(c.dataset)
        train_x, train_y = datasets.load_tensors(c.dataset, True, c.data_root)
        test_x, test_y = datasets.load_tensors(c.dataset, False, c.data_root)
        self.test = (test_x.to(self.device), test_y.to(self.device))
        parts = partition(train_y, c.nb_workers, c.heterogeneity, generator(c.seed, "partition"),
                          **{k: getattr(c, k) for k in HETEROGENEITY_PARAMS.get(c.heterogeneity, ())})
        self.sampler = WorkerSampler(train_x.to(self.device), train_y.to(self.device), parts, c.batch_size,
                                     derive_seed(c.seed, "sampler"))
        self.model = self._build_model()
        self.loss_fn = LOSSES[c.loss]
        self.engine = make_engine(c.engine, self.model, self.loss_fn, chunk_size=c.chunk_size,
                                  seed=derive_seed(c.seed, "engine"))
        self.optimizer = Optimizer("sgd", self.model, lr=1.0)  # applies the flat update computed by `Momentum`
        self.criterion = Criterion(c.criterion, **c.criterion_args)
        self.momentum = Momentum(c, self.model.get().numel(), self.device, self.model.get().dtype)
        self.t = 0
        self.metrics: list[dict] = []
        self.evaluations: list[dict] = []
        self._probe()

    def _build_model(self) -> Model:
        c = self.config
        kwargs = {"num_classes": self.num_classes, **c.model_args}
        try:  # init_seed: a seeded initialisation that leaves the global RNG alone
            return Model(c.model_name, Configuration(device=self.device, dtype=torch.float32),
                         init_seed=derive_seed(c.seed, "model"), **kwargs)
        except TypeError as err:
            raise UserException(f"Model {c.model_name!r} does not accept these arguments: {err}.") from None

    def _probe(self) -> None:
        """Raise the user errors that would otherwise surface at the first step, before anything is written.

        One forward pass and the criterion on two test samples (does the model take this data?) and
        one attack on stand-in vectors with a throwaway generator (are its
        parameters valid for this n and f?); adaptive attacks only call the
        aggregator's side-effect-free `trial`. No run state is touched.
        """
        c = self.config
        with torch.no_grad():
            try:
                self.criterion(self.model.run(self.test[0][:2]), self.test[1][:2])
            except RuntimeError as err:
                first = str(err).splitlines()[0]
                raise UserException(f"Model {c.model_name!r} cannot take {c.dataset!r} inputs of shape "
                                    f"{tuple(self.test[0].shape[1:])}: {first}") from None
        if c.real_byz and self.attack.kind not in ("none", "data"):
            stand_in = torch.zeros(c.nb_honest, 2)
            context = AttackContext(nb_workers=c.nb_workers, decl_f=c.nb_decl_byz, aggregator=self.aggregator,
                                    generator=torch.Generator(), own_gradients=torch.zeros(c.real_byz, 2),
                                    num_classes=self.num_classes)
            state = copy.deepcopy(self.attack.state_dict())  # stateful attacks (mimic) must not see the probe
            self.attack(stand_in, c.real_byz, context)
            self.attack.load_state_dict(state)

    # ------------------------------------------------------------------ step
    def _worker_vectors(self, gradients: torch.Tensor, first: int) -> torch.Tensor:
        """What workers first.. send: gradient + l2 term, clipped, through worker momentum."""
        c = self.config
        if c.l2:
            gradients = gradients + c.l2 * self.model.get()
        if c.clip is not None:
            norms = gradients.norm(dim=1, keepdim=True)
            gradients = gradients * (c.clip / norms).clamp(max=1.0).nan_to_num(nan=0.0)
        return self.momentum.at_workers(gradients, first)

    def _byzantine(self, inputs: torch.Tensor, targets: torch.Tensor, honest: torch.Tensor) -> torch.Tensor:
        """The f real Byzantine vectors of this step."""
        c, h, f = self.config, self.config.nb_honest, self.config.real_byz
        if f == 0:
            return honest.new_empty((0, honest.shape[1]))
        if self.attack.kind in ("none", "data"):
            if self.attack.kind == "data":
                inputs, targets = self.attack.poison(inputs, targets, self.num_classes)
            gradients, _ = self.engine.gradients(inputs, targets, update_buffers=False)
            return self._worker_vectors(gradients, h)
        own = None
        if self.attack.needs_own_gradients:
            own = self._worker_vectors(self.engine.gradients(inputs, targets, update_buffers=False)[0], h)
        context = AttackContext(nb_workers=c.nb_workers, decl_f=c.nb_decl_byz, aggregator=self.aggregator,
                                generator=self.attack_generator, own_gradients=own, num_classes=self.num_classes)
        return self.attack(honest, f, context)

    def step(self) -> dict:
        """One training step; returns its metrics row."""
        start = time.perf_counter()
        h, lr = self.config.nb_honest, learning_rate(self.config, self.t)
        inputs, targets = self.sampler.sample()
        gradients, losses = self.engine.gradients(inputs[:h], targets[:h])
        honest = self._worker_vectors(gradients, 0)
        byzantine = self._byzantine(inputs[h:], targets[h:], honest)
        aggregate = self.aggregator(torch.cat([honest, byzantine]), self.config.nb_decl_byz)
        self.model.update(self.momentum.update(aggregate, self.model.get(), lr), self.optimizer)
        row = {"step": self.t, "lr": lr, "train_loss": losses.mean().item(), **step_metrics(honest, aggregate),
               "step_time": time.perf_counter() - start}
        self.t += 1
        self.metrics.append(row)
        return row

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Accuracy and mean loss on the whole test set, in eval mode."""
        correct, total, loss_sum = 0.0, 0, 0.0
        for x, y in zip(*(t.split(self.config.test_batch_size) for t in self.test)):
            output = self.model.run(x)
            correct += self.criterion(output, y)[0].item()
            total += len(y)
            loss_sum += self.loss_fn(output, y, reduction="sum").item()
        row = {"step": self.t, "accuracy": correct / total, "test_loss": loss_sum / total}
        self.evaluations.append(row)
        return row

    # ----------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where the run stands."""
        return {
            "t": self.t,
            "module": {k: v.clone() for k, v in self.model.module.state_dict().items()},
            "momentum": self.momentum.state_dict(),
            "sampler": self.sampler.state_dict(),
            "aggregator": self.aggregator.state_dict(),
            "attack": self.attack.state_dict(),
            "attack_generator": self.attack_generator.get_state(),
            "engine": self.engine.state_dict(),
            "metrics": list(self.metrics),
            "evaluations": list(self.evaluations),
        }

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        self.model.module.load_state_dict(state["module"])
        self.momentum.load_state_dict(state["momentum"])
        self.sampler.load_state_dict(state["sampler"])
        self.aggregator.load_state_dict(state["aggregator"])
        self.attack.load_state_dict(state["attack"])
        self.attack_generator.set_state(state["attack_generator"])
        self.engine.load_state_dict(state["engine"])
        self.metrics = list(state["metrics"])
        self.evaluations = list(state["evaluations"])
