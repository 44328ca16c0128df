"""Privacy accounting with Opacus's accountants: what (epsilon, delta) a run has spent, and the noise for a target.

Every mechanism here is a subsampled Gaussian mechanism composed over its
steps: noise multiplier sigma (the noise's std over the sensitivity), sample
rate q, delta. The accountant is Opacus's (``opacus.accountants``, the
optional extra ``privacy``): ``rdp`` (Renyi DP, Mironov, Talwar and Zhang, "Renyi
Differential Privacy of the Sampled Gaussian Mechanism", 2019) or ``prv`` (privacy loss
random variables, Gopi et al., "Numerical Composition of Differential
Privacy", NeurIPS 2021; Opacus's default). Both assume Poisson sampling at
rate q; byzsim's workers draw shuffled fixed-size batches, the usual practice
that such accounting reports (the gap: Chua et al., "How Private are DP-SGD
Implementations?", ICML 2024). `calibrate` is Opacus's `get_noise_multiplier`.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from experiments.tools import UserException

__all__ = ["ACCOUNTANTS", "INSTALL", "Accountant", "calibrate", "opacus_accountants"]

ACCOUNTANTS = ("prv", "rdp")
INSTALL = "pip install 'byzsim[privacy]' (or pip install opacus)"


def opacus_accountants() -> ModuleType:
    """``opacus.accountants``, or the one line saying how to install it."""
    try:
        import opacus.accountants  # lazy: an optional extra that takes seconds to import
        import opacus.accountants.utils  # lazy: as above
    except ImportError:
        raise UserException(f"Privacy accounting needs Opacus, which is not installed: {INSTALL}.") from None
    return opacus.accountants


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Opacus's numerical warnings (a log of 0 at q = 1, the largest RDP order) say nothing to a run's user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


class Accountant:
    """Opacus's accountant of one run's mechanism: ``step()`` per noisy release, ``epsilon()`` at its delta."""

    def __init__(self, mechanism: str, sigma: float, q: float, delta: float) -> None:
        self.sigma, self.q, self.delta = sigma, q, delta
        self.opacus = opacus_accountants().create_accountant(mechanism=mechanism)

    def step(self, count: int = 1) -> None:
        for _ in range(count):
            self.opacus.step(noise_multiplier=self.sigma, sample_rate=self.q)

    def epsilon(self) -> float:
        """The epsilon spent so far at the run's delta (0 before the first step)."""
        if not self.opacus.history:
            return 0.0
        with _quiet():
            return float(self.opacus.get_epsilon(delta=self.delta))

    def state_dict(self) -> dict[str, Any]:
        return dict(self.opacus.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.opacus.load_state_dict(state)


def calibrate(mechanism: str, epsilon: float, delta: float, q: float, steps: int, owner: str) -> float:
    """The noise multiplier that spends ``epsilon`` at ``delta`` over ``steps`` at rate ``q`` (Opacus's
    `get_noise_multiplier`, within its tolerance 0.01), or one line when none up to Opacus's bound does."""
    utils = opacus_accountants().utils
    try:
        with _quiet():
            return float(utils.get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=q,
                                                    steps=steps, accountant=mechanism))
    except ValueError:
        raise UserException(f"{owner} cannot reach epsilon={epsilon} at delta={delta} over {steps} steps at sample "
                            f"rate {q:.4g}: no noise multiplier up to {utils.MAX_SIGMA:g} (Opacus's bound) does; "
                            f"give a larger epsilon.") from None
