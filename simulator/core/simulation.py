"""One simulated run in memory: its parts, one training step, one evaluation.

A step: every honest worker samples a batch from its own partition of the
training set (the data belongs to the honest workers); the engine computes
their gradients; workers add l2, clip and apply momentum; the attack produces
the Byzantine vectors (a data attack poisons the Byzantine workers' own
batches, drawn iid from the whole training set, whose gradients are then
computed honestly); the aggregator chain combines the n vectors (honest
first, Byzantine last); the server subtracts the update from the parameters.
A privacy mechanism (`simulator.core.privacy`) acts at three points of the
step: the honest gradients (DP-SGD's noisy clipped means), what the honest
workers send and what the attack sees of it (DP-FedAvg's clipped updates), and
the rule's output (DP-FedAvg's noise), where its accountant counts the step.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from aggregators.base import RoundInfo
from attacks.base import AttackContext, Poison
from attacks.targeted import DataView, TargetedAttack
from experiments import Criterion, datasets
from experiments.datasets import flip_mask, hflip
from experiments.loss import LOSSES
from experiments.tools import UserException
from simulator.core.build import build_engine, build_model, samplers, training_set
from simulator.core.config import Config
from simulator.core.distributed import Connection, RemoteWorkers
from simulator.core.federated import Selection, participants
from simulator.core.metrics import data_summary, step_metrics
from simulator.core.optim import Momentum
from simulator.core.privacy import Mechanism, Setup
from simulator.core.rounds import Rounds
from simulator.core.seeding import derive_seed, generator
from simulator.core.workers import LocalSteps, LocalWorkers


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

    def __init__(self, config: Config, remote: Connection | None = None):
        """Build the run; ``remote`` (rank 0 of a distributed run) has the worker ranks compute the gradients."""
        c = self.config = config.validate()
        self.device = resolve_device(c.device)
        self.aggregator = copy.deepcopy(c.parts["aggregator"])  # the run's own state, the config's stays fresh
        self.attack = copy.deepcopy(c.parts["attack"])
        self.attack_generator = generator(c.seed, "attack")
        self.num_classes = datasets.num_classes(c.dataset_name)
        (train_x, train_y), parts, self.validation = training_set(c, self.device)
        test_x, test_y = datasets.load_tensors(c.dataset_name, False, c.data_root,
                                               normalise=c.parts["dataset"].normalise)
        self.test = (test_x.to(self.device), test_y.to(self.device))
        # dataset(flip=true): the evaluation sets' flips, a stream of their own (the workers' are their samplers')
        self.evaluation_flips = generator(c.seed, "evaluation flip") if c.parts["dataset"].flip else None
        self.data = data_summary(train_y, parts, self.num_classes)
        self.sampler, self.byzantine_sampler = samplers(c, (train_x, train_y), parts)
        self.model = build_model(c, self.device)
        self.loss_fn = LOSSES[c.loss]
        self.engine = build_engine(c, self.model, (train_x, train_y), self.device)
        self.workers = LocalWorkers(self.engine, self.sampler, self.byzantine_sampler, self.num_classes)
        if remote is not None:  # the server computes the Byzantine workers' gradients only (unless on ranks)
            local = LocalWorkers(self.engine, None, self.byzantine_sampler, self.num_classes)
            self.workers = RemoteWorkers(remote, c, self.model, local)
        self.criterion = Criterion(c.parts["criterion"].name, **c.parts["criterion"].params)
        params = self.model.get()
        self.momentum = Momentum(c, params.numel(), self.device, params.dtype)
        self.server = c.parts["server_opt"].start(self.momentum, params.numel(), self.device, params.dtype)
        self.rounds = Rounds(c, self.aggregator, self.engine, (train_x, train_y), self.num_classes,
                             self._worker_vectors)  # what the rule is told each step besides the vectors
        self.participants = participants(c, generator(c.seed, "clients"))
        self.t = 0
        self.previous_aggregate: torch.Tensor | None = None  # the rule's output at the last step, for attacks
        self.metrics: list[dict] = []
        self.evaluations: list[dict] = []
        self._prepare_attack((train_x, train_y))
        self._probe()
        self.privacy = self._start_privacy(parts, (train_x[:2], train_y[:2]))  # None without; refusals come here
        if self.privacy is not None:  # DP-SGD's gradients at the honest workers
            self.workers.private = self.privacy.per_sample

    def _start_privacy(self, parts: list[torch.Tensor], probe: tuple[torch.Tensor, torch.Tensor]) -> Mechanism | None:
        """The run's privacy mechanism, from its data (None without one); its user errors come before any file."""
        c = self.config
        params = self.model.get()
        return c.parts["privacy"].start(Setup(c, self.device, params.dtype, params.numel(), [len(p) for p in parts],
                                              derive_seed(c.seed, "privacy"), self.engine, probe))

    def _prepare_attack(self, train: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Tell a targeted attack the run's data (a trigger outside the image, a class out of range are refused
        here) and keep the examples its backdoor is tested on (None: the test set)."""
        c = self.config
        self.targeted = isinstance(self.attack, TargetedAttack)
        self.backdoor_examples = None
        if self.targeted:
            stats = datasets.REGISTRY.get(c.dataset_name).stats() if c.parts["dataset"].normalise else None
            self.attack.prepare(DataView.of(self.test[0], self.num_classes, stats, train=train, test=self.test))
            self.backdoor_examples = self.attack.backdoor_set(self.test)

    def _probe(self) -> None:
        """Raise the user errors that would otherwise surface at the first step, before anything is written.

        One forward pass and the criterion on two test samples (does the model take this data?) and
        one attack on stand-in vectors and batches with a throwaway generator (are its
        parameters valid for this n and f?); adaptive attacks only call the
        aggregator's side-effect-free `trial`. No run state is touched.
        """
        c = self.config
        if self.attack.last_attacked(c.steps) is None:
            raise UserException(f"Attack {self.attack.spec!r} never attacks within the run's {c.steps} steps "
                                f"(its schedule begins at step {self.attack.begin}, counted from 0).")
        execution = c.parts["execution"]
        if self.targeted and not self.attack.on_ranks and getattr(execution, "byzantine", None) == "ranks":
            raise UserException(f"Attack {self.attack.name!r} poisons with the run's data on the server: run it "
                                f"with --execution \"torchrun(byzantine=server)\", not byzantine=ranks.")
        with torch.no_grad():
            try:
                self.criterion(self.model.run(self.test[0][:2]), self.test[1][:2])
            except RuntimeError as err:
                first = str(err).splitlines()[0]
                raise UserException(f"Model {c.model_name!r} cannot take {c.dataset!r} inputs of shape "
                                    f"{tuple(self.test[0].shape[1:])}: {first}") from None
        if c.real_byz:  # as in a step: n the round's size, f the most attackers a round can hold
            n, f = c.per_round, min(c.real_byz, c.per_round)
            x, y = self.test[0][:1].expand(f, 1, *self.test[0].shape[1:]), self.test[1][:1].expand(f, 1)

            def stand_in(poison, momentum):  # data attacks check their poisoning on two real batches
                if poison is not None:
                    poison(x, y, self.num_classes)
                return torch.zeros(f, 2)

            context = AttackContext(nb_workers=n, decl_f=c.nb_decl_byz, aggregator=self.aggregator,
                                    generator=torch.Generator(), num_classes=self.num_classes, vectors=stand_in)
            state = copy.deepcopy(self.attack.state_dict())  # stateful attacks (mimic) must not see the probe
            self.aggregator.inform(RoundInfo.stand_in(max(n - f, 1) + f, 2))  # a round for the stand-in vectors
            try:
                self.attack.byzantine(torch.zeros(max(n - f, 1), 2), f, context)
            finally:
                self.aggregator.inform(RoundInfo())
            self.attack.load_state_dict(state)

    # ------------------------------------------------------------------ step
    def _worker_vectors(self, vectors: torch.Tensor, rows: int | torch.Tensor, momentum: bool = True) -> torch.Tensor:
        """What workers send: gradient + l2 term, clipped, through worker momentum (if ``momentum``).

        ``rows`` are the workers' momentum rows (the first, or an index tensor). A
        federated client's vector is its update: l2 and clipping were applied at each
        local step, worker momentum applies to the update.
        """
        c = self.config
        if not c.federated:
            if c.l2:
                vectors = vectors + c.l2 * self.model.get()
            if c.clip is not None:
                norms = vectors.norm(dim=1, keepdim=True)
                vectors = vectors * (c.clip / norms).clamp(max=1.0).nan_to_num(nan=0.0)
        return self.momentum.at_workers(vectors, rows) if momentum else vectors

    def _local(self, lr: float) -> LocalSteps | None:
        """How a client trains in this round (None: one gradient per worker per step)."""
        c = self.config
        if not c.federated:
            return None
        return LocalSteps(c.local_steps, c.local_lr if c.local_lr is not None else lr, c.local_momentum, c.l2,
                          c.clip, c.local_batches == "same")

    def _looking_ahead(self, compute: Callable[[torch.Tensor | None], Any], rows: int | torch.Tensor, count: int,
                       lr: float) -> Any:
        """``compute(at)`` at Nesterov's look-ahead point (`Momentum.lookahead`), or where the model is.

        The server's buffer moves the model itself for the computation (restored exactly after);
        the workers' own buffers give each worker its own parameters ``at``.
        """
        shift = self.momentum.lookahead(lr, rows, count)
        if shift is None:
            return compute(None)
        params = self.model.get()
        if self.momentum.placement == "worker":
            return compute(params - shift)
        saved = params.clone()
        params.sub_(shift[0])
        try:
            return compute(None)
        finally:
            params.copy_(saved)

    def _attack_context(self, chosen: Selection, local: LocalSteps | None, lr: float) -> AttackContext:
        c = self.config
        pooled = c.clients is not None
        rows = chosen.byzantine if pooled else None
        momentum_rows = c.nb_honest + chosen.byzantine if pooled else c.nb_honest

        def vectors(poison: Poison | None, momentum: bool) -> torch.Tensor:
            """What the Byzantine workers would send honestly on their own (poisoned) batches."""
            grads = self._looking_ahead(lambda at: self.workers.byzantine(poison, rows, local, at), momentum_rows,
                                        chosen.f, lr)
            return self._worker_vectors(grads, momentum_rows, momentum)

        return AttackContext(nb_workers=c.per_round, decl_f=chosen.told_f, aggregator=self.aggregator,
                             generator=self.attack_generator, num_classes=self.num_classes,
                             vectors=vectors if chosen.f else None, step=self.t,
                             previous_aggregate=self.previous_aggregate,
                             server_lr=lr if local is None else c.parts["server_opt"].lr, federated=local is not None)

    def step(self) -> dict:
        """One training step (a federated round: see `simulator.core.federated`); returns its metrics row."""
        start = time.perf_counter()
        c = self.config
        lr = c.parts["lr_schedule"].rate(c.lr, self.t, c.steps)
        chosen, local = self.participants.select(), self._local(lr)
        pooled = c.clients is not None
        rows = chosen.honest if pooled else 0
        vectors, losses = self._looking_ahead(lambda at: self.workers.honest(chosen.honest if pooled else None,
                                                                             local, at),
                                              rows, c.nb_honest if not pooled else len(chosen.honest), lr)
        honest = seen = self._worker_vectors(vectors, rows)
        if self.privacy is not None:  # what the honest workers send (DP-FedAvg: clipped), what the attack sees of it
            honest = self.privacy.sent(honest)
            seen = self.privacy.seen(honest, lambda clean: self._worker_vectors(clean, rows))
        self.aggregator.inform(self.rounds.info(self.t, chosen, local, lr, self.model.get()))  # before the attack
        byzantine = self.attack.send(seen, chosen.f, self._attack_context(chosen, local, lr))  # on its schedule
        aggregate = self.aggregator(torch.cat([honest, byzantine]), chosen.told_f)
        if self.privacy is not None:  # the server's noise (DP-FedAvg) before anything uses it; the step accounted
            aggregate = self.privacy.released(aggregate, byzantine)
        self.momentum.keep(aggregate)
        self.previous_aggregate = aggregate
        params = self.model.get()
        with torch.no_grad():  # a federated server steps on the pseudo-gradient -aggregate, with its own lr
            gradient = aggregate if local is None else -aggregate
            if c.weight_decay:
                gradient = gradient + c.weight_decay * params
            params.sub_(self.server.update(gradient, lr if local is None else c.parts["server_opt"].lr))
        rates = {"lr": lr} if local is None else {"lr": local.lr, "server_lr": c.parts["server_opt"].lr}  # in force
        row = {"step": self.t, **rates, **step_metrics(losses, honest, aggregate),
               "byzantine_selected": chosen.f, "step_time": time.perf_counter() - start}
        self.t += 1
        self.metrics.append(row)
        return row

    def finite(self) -> bool:
        """Whether the last step's training loss and the parameters are finite (else the run diverged)."""
        return math.isfinite(self.metrics[-1]["train_loss"]) and bool(torch.isfinite(self.model.get()).all())

    @torch.no_grad()
    def broken_evaluation(self) -> dict:
        """The evaluation of this model with every parameter NaN, which a diverged run reaches if it runs on."""
        params = self.model.get()
        saved = params.clone()
        flips = self.evaluation_flips.get_state() if self.evaluation_flips is not None else None
        params.fill_(math.nan)
        try:
            return self.evaluate()
        finally:
            self.evaluations.pop()
            params.copy_(saved)
            if flips is not None:  # this evaluation draws no flips of the run's
                self.evaluation_flips.set_state(flips)

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Accuracy and mean loss on the whole test set (and the validation set, if any), in eval mode.

        With ``dataset(flip=true)`` each image of each set is flipped with probability 1/2, drawn anew at each
        evaluation (the test set first, then the validation set). Under a targeted attack the row also holds
        the backdoor's ``asr`` and ``robust_accuracy`` (`_backdoor`).
        """
        row = {"step": self.t}
        sets = {"": self.test, "val_": self.validation} if self.validation is not None else {"": self.test}
        masks = {}
        for prefix, (inputs, labels) in sets.items():
            masks[prefix] = flips = None if self.evaluation_flips is None else \
                flip_mask((len(labels),), self.evaluation_flips).to(self.device)
            correct, loss = self._score(inputs, labels, flips)
            row[f"{prefix}accuracy"] = correct
            row["val_loss" if prefix else "test_loss"] = loss
        if self.targeted:
            row.update(self._backdoor(masks[""]))
        if self.privacy is not None:
            row["epsilon"] = self.privacy.epsilon()  # spent so far, at the mechanism's delta
        self.evaluations.append(row)
        return row

    def _backdoor(self, test_flips: torch.Tensor | None) -> dict[str, float]:
        """The targeted attack's backdoor at this point: over the triggered inputs of the non-target examples
        (`TargetedAttack.backdoor`), ``asr`` the share classified (top-1) as the target, ``robust_accuracy`` the
        share that keep their true label; batched by test_batch_size.

        Its examples are the test set, mirrored as the clean evaluation's were (then stamped, as the
        workers' samples are), or the attack's own set, mirrored by draws of its own after the others'.
        """
        own = self.backdoor_examples
        inputs, labels = self.test if own is None else own
        flips = test_flips if own is None or self.evaluation_flips is None else \
            flip_mask((len(labels),), self.evaluation_flips).to(self.device)
        hits = torch.zeros(2, dtype=torch.int64, device=self.device)  # classified as the target; kept their label
        count, size = 0, self.config.test_batch_size
        masks = flips.split(size) if flips is not None else [None] * len(labels.split(size))
        for x, y, mask in zip(inputs.split(size), labels.split(size), masks):
            triggered, truth = self.attack.backdoor(x if mask is None else hflip(x, mask), y)
            if len(truth):
                predicted = self.model.run(triggered).argmax(dim=1)
                hits += torch.stack([(predicted == self.attack.target).sum(), (predicted == truth).sum()])
                count += len(truth)
        asr, kept = hits.tolist()  # one transfer from the device
        return {"asr": asr / count, "robust_accuracy": kept / count} if count else \
            {"asr": math.nan, "robust_accuracy": math.nan}

    def _score(self, inputs: torch.Tensor, labels: torch.Tensor,
               flips: torch.Tensor | None = None) -> tuple[float, float]:
        """(criterion score, mean loss) over a whole set, batched by test_batch_size; ``flips`` [N] mirrors some."""
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        size = self.config.test_batch_size
        masks = flips.split(size) if flips is not None else [None] * len(labels.split(size))
        for x, y, mask in zip(inputs.split(size), labels.split(size), masks):
            output = self.model.run(x if mask is None else hflip(x, mask))
            correct += self.criterion(output, y)[0]
            loss_sum += self.loss_fn(output, y, reduction="sum")
        correct, loss_sum = torch.stack([correct, loss_sum]).tolist()  # one transfer from the device
        return correct / len(labels), loss_sum / len(labels)

    # ----------------------------------------------------------- checkpoint
    def state_dict(self) -> dict:
        """Everything needed to continue exactly where the run stands."""
        return {
            **self._shared_state(),
            "aggregator": self.aggregator.state_dict(),
            "rounds": self.rounds.state_dict(),
            "participants": self.participants.state_dict(),
            "server": self.server.state_dict(),
            "previous_aggregate": self.previous_aggregate,
            **({"privacy": self.privacy.state_dict()} if self.privacy is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self._load_shared_state(state)
        self.aggregator.load_state_dict(state["aggregator"])
        self.rounds.load_state_dict(state.get("rounds", {}))  # absent from checkpoints before rules were told rounds
        self.participants.load_state_dict(state.get("participants", {}))  # absent from checkpoints before pools
        self.server.load_state_dict(state.get("server", {}))
        self.previous_aggregate = state.get("previous_aggregate")  # absent from checkpoints before it was kept
        if self.privacy is not None:  # the accountant's history and the noise generator
            self.privacy.load_state_dict(state["privacy"])

    def _shared_state(self) -> dict:
        """The state every setting checkpoints: step, module, momentum, workers, attack, flips and the rows so far."""
        return {
            "t": self.t,
            "module": {k: v.clone() for k, v in self.model.module.state_dict().items()},
            "momentum": self.momentum.state_dict(),
            **self.workers.state_dict(),  # engine_name, engine, sampler, byzantine_sampler
            "attack": self.attack.state_dict(),
            "attack_generator": self.attack_generator.get_state(),
            **({"evaluation_flips": self.evaluation_flips.get_state()} if self.evaluation_flips is not None else {}),
            "metrics": list(self.metrics),
            "evaluations": list(self.evaluations),
        }

    def _load_shared_state(self, state: dict) -> None:
        """Restore what `_shared_state` holds; a checkpoint of another engine is refused."""
        if state["engine_name"] != self.workers.name:
            raise UserException(f"This checkpoint was written by the {state['engine_name']!r} engine, "
                                f"not {self.workers.name!r}; a run never resumes under another engine.")
        self.t = state["t"]
        self.model.module.load_state_dict(state["module"])
        self.momentum.load_state_dict(state["momentum"])
        self.workers.load_state_dict(state)
        self.attack.load_state_dict(state["attack"])
        self.attack_generator.set_state(state["attack_generator"])
        if self.evaluation_flips is not None:
            self.evaluation_flips.set_state(state["evaluation_flips"])
        self.metrics = list(state["metrics"])
        self.evaluations = list(state["evaluations"])
