"""Model wrapper: one flat parameter vector, one flat gradient vector.

Every parameter of the wrapped `torch.nn.Module` is a view into the vector
returned by `Model.get`, and every ``param.grad`` a view into the vector
returned by `Model.get_gradient`; reading, writing or aggregating a whole model
is then one tensor operation.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from experiments import flat, models
from experiments.configuration import Configuration, place
from experiments.tools import UnavailableException, UserException

__all__ = ["Model"]

_DEFAULTS = ("trainset", "testset", "loss", "criterion", "optimizer")


def _initializer(init: str | Callable | None, args: dict | None) -> Callable[[torch.Tensor], Any] | None:
    """Resolve a `torch.nn.init` name (``"xavier_normal"`` or ``"xavier_normal_"``) or a callable."""
    if init is None:
        return None
    args = dict(args or {})
    if callable(init):
        return lambda tensor: init(tensor, **args)
    available = {n.rstrip("_"): getattr(torch.nn.init, n) for n in dir(torch.nn.init)
                 if n.endswith("_") and not n.startswith("_")}
    fn = available.get(str(init).rstrip("_"))
    if fn is None:
        raise UnavailableException("initializer", init, available)
    return lambda tensor: fn(tensor, **args)


class Model:
    """A `torch.nn.Module` with flat parameter/gradient vectors and named defaults.

    Args:
        name_build: model name (``"simples-conv"``, ``"resnet18"``,
            ``"torchvision-resnet18"``) or a constructor returning a module.
        config: target device and dtype (default: ``Configuration()``).
        init_multi / init_multi_args: initializer (a `torch.nn.init` name or a
            callable) and its keyword arguments, for parameters of dimension >= 2.
        init_mono / init_mono_args: the same for parameters of dimension 1.
        *args, **kwargs: forwarded to the model constructor (e.g. ``num_classes=10``).
        init_seed: when given, construction and initialization draw from a CPU
            generator seeded with it (inside `torch.random.fork_rng`), so the
            model is reproducible and the global RNG state is left unchanged.
    """

    def __init__(self, name_build: str | Callable[..., torch.nn.Module], config: Configuration | None = None,
                 init_multi: str | Callable | None = None, init_multi_args: dict | None = None,
                 init_mono: str | Callable | None = None, init_mono_args: dict | None = None,
                 *args: Any, init_seed: int | None = None, **kwargs: Any):
        build = models.constructor(name_build) if isinstance(name_build, str) else name_build
        self._name = name_build if isinstance(name_build, str) else getattr(build, "__name__", repr(build))
        self._config = config if config is not None else Configuration()
        inits = (_initializer(init_multi, init_multi_args), _initializer(init_mono, init_mono_args))
        if init_seed is None:
            module = self._build(build, inits, args, kwargs)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(init_seed)
                module = self._build(build, inits, args, kwargs)
        module = module.to(device=self._config["device"], dtype=self._config["dtype"])
        self._module = module
        self._params_list = list(module.parameters())
        self._params = flat.flatten(self._params_list).to(device=self._config["device"], dtype=self._config["dtype"])
        flat.relink_data(self._params_list, self._params)
        self._gradient = torch.zeros_like(self._params)
        flat.relink_grads(self._params_list, self._gradient)
        device = self._config["device"]  # DataParallel only on a non-indexed CUDA device with several GPUs visible
        parallel = device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1
        self._runner = torch.nn.DataParallel(module) if parallel else module
        self._defaults: dict[str, Any] = dict.fromkeys(_DEFAULTS)

    @staticmethod
    def _build(build: Callable, inits: tuple, args: tuple, kwargs: dict) -> torch.nn.Module:
        try:
            module = build(*args, **kwargs)
        except TypeError as err:
            raise UserException(f"Invalid arguments for model {getattr(build, '__name__', build)!r}: {err}") from None
        if not isinstance(module, torch.nn.Module):
            raise UserException(f"Model constructor returned a {type(module).__name__}, not a torch.nn.Module.")
        multi, mono = inits
        with torch.no_grad():
            for param in module.parameters():
                init = multi if param.dim() >= 2 else mono if param.dim() == 1 else None
                if init is not None:
                    init(param)
        return module

    def __str__(self) -> str:
        return f"model {self._name}"

    @property
    def module(self) -> torch.nn.Module:
        """The underlying module (never the DataParallel wrapper)."""
        return self._module

    @property
    def config(self) -> Configuration:
        """The immutable configuration."""
        return self._config

    def default(self, name: str, new: Any = None, erase: bool = False) -> Any:
        """Get the named default; set it to `new` (or None if `erase`) and return the old value."""
        if name not in self._defaults:
            raise UnavailableException("model default", name, _DEFAULTS)
        old = self._defaults[name]
        if new is not None or erase:
            self._defaults[name] = None if erase else new
        return old

    def _need(self, name: str, value: Any) -> Any:
        if value is not None:
            return value
        value = self._defaults[name]
        if value is None:
            raise UserException(f"No {name} given and no default {name!r} set on this model (see Model.default).")
        return value

    # Parameters and gradients

    def get(self) -> torch.Tensor:
        """The flat parameter vector itself (a reference: `set` modifies it in place)."""
        return self._params

    def _install(self, vector: torch.Tensor, relink: bool | None, gradient: bool) -> None:
        """Copy ``vector`` into the flat parameters (or gradient), or adopt it when relinking."""
        what = "gradient" if gradient else "parameter vector"
        if not isinstance(vector, torch.Tensor) or vector.shape != self._params.shape:
            shape = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector).__name__
            raise UserException(f"Expected a flat {what} of shape {tuple(self._params.shape)}, got {shape}.")
        if not (relink if relink is not None else self._config.relink):
            with torch.no_grad():
                (self._gradient if gradient else self._params).copy_(vector)
            return
        if (vector.device != self._params.device or vector.dtype != self._params.dtype
                or not vector.is_contiguous()):
            raise UserException(f"Cannot relink a {what} on {vector.device}/{vector.dtype} (or non-contiguous); "
                                f"expected a contiguous tensor on {self._params.device}/{self._params.dtype}.")
        if gradient:
            self._gradient = vector
            flat.relink_grads(self._params_list, vector)
        else:
            self._params = vector
            flat.relink_data(self._params_list, vector)

    def set(self, params: torch.Tensor, relink: bool | None = None) -> None:
        """Overwrite the parameters with a flat vector: copy it, or adopt it when relinking."""
        self._install(params, relink, gradient=False)

    def get_gradient(self) -> torch.Tensor:
        """The flat gradient vector itself (a reference: `set_gradient` modifies it in place)."""
        return self._gradient

    def set_gradient(self, gradient: torch.Tensor, relink: bool | None = None) -> None:
        """Overwrite the gradient with a flat vector: copy it, or adopt it when relinking."""
        self._install(gradient, relink, gradient=True)

    # Forward, backward, update

    def run(self, data: torch.Tensor, training: bool = False) -> torch.Tensor:
        """Forward pass; training mode (dropout, batch-norm updates) only if `training`."""
        self._module.train(training)
        return self._runner(place(data, self._config))

    def _batch(self, dataset: Any, default: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._need(default, dataset).sample(self._config)

    def _loss_params(self, loss: Any) -> torch.Tensor:
        """The parameters as the loss sees them: differentiable when the loss uses them."""
        if getattr(loss, "needs_params", True):
            return torch.cat([p.reshape(-1) for p in self._params_list]) if self._params_list else self._params
        return self._params

    def loss(self, dataset: Any = None, loss: Any = None, training: bool | None = None) -> torch.Tensor:
        """Loss on one batch (default trainset); `training=None` follows `torch.is_grad_enabled()`."""
        loss = self._need("loss", loss)
        inputs, targets = self._batch(dataset, "trainset")
        training = torch.is_grad_enabled() if training is None else training
        return loss(self.run(inputs, training=training), targets, self._loss_params(loss))

    def backprop(self, dataset: Any = None, loss: Any = None, outloss: bool = False,
                 **kwargs: Any) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Gradient on one batch (default trainset), computed in training mode.

        Returns a copy of the flat gradient (which also stays in `get_gradient()`),
        and the detached loss value when `outloss`. `kwargs` go to ``backward()``.
        """
        loss = self._need("loss", loss)
        inputs, targets = self._batch(dataset, "trainset")
        flat.relink_grads(self._params_list, self._gradient)  # in case someone replaced a .grad
        self._gradient.zero_()
        with torch.enable_grad():
            value = loss(self.run(inputs, training=True), targets, self._loss_params(loss))
            value.backward(**kwargs)
        flat.sync_grads(self._params_list, self._gradient)
        gradient = self._gradient.clone()
        return (gradient, value.detach()) if outloss else gradient

    def update(self, gradient: torch.Tensor, optimizer: Any = None, relink: bool | None = None) -> None:
        """Install `gradient` as the flat gradient and take one optimizer step (default optimizer)."""
        optimizer = self._need("optimizer", optimizer)
        self.set_gradient(gradient, relink=relink)
        optimizer.step()

    @torch.no_grad()
    def eval(self, dataset: Any = None, criterion: Any = None) -> torch.Tensor:
        """Criterion on one batch (default testset) in evaluation mode: correct / batch size."""
        criterion = self._need("criterion", criterion)
        inputs, targets = self._batch(dataset, "testset")
        correct, total = criterion(self.run(inputs, training=False), targets)
        return correct / total
