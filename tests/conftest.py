"""Fixtures shared by every test folder."""
from collections.abc import Sequence
from pathlib import Path

import pytest

from simulator.core.config import Config
from simulator.core.metrics import EVAL_COLUMNS, METRIC_COLUMNS
from simulator.core.store import CONFIG, EVALS, METRICS, SUMMARY, RunFolder


def _write_finished_run(config: Config, accuracy: Sequence[float], *, losses: Sequence[float] | None = None,
                        val: Sequence[float] | None = None) -> Path:
    """Write the run folder of ``config`` as a finished run would leave it, without training.

    One evaluation every 10 steps with the given test accuracies (test losses 1.0 unless given, validation
    columns blank unless ``val`` is), a metrics.csv of zeros up to the last step, config.json, and summary.json
    (the steps and the accuracies) written last.
    """
    folder = RunFolder(config.folder())
    losses = [1.0] * len(accuracy) if losses is None else losses
    rows = [{"step": 10 * i, "accuracy": a, "test_loss": loss,
             "val_accuracy": "" if val is None else val[i], "val_loss": "" if val is None else 1.0}
            for i, (a, loss) in enumerate(zip(accuracy, losses))]
    folder.write_csv(EVALS, EVAL_COLUMNS, rows)
    steps = rows[-1]["step"]
    folder.write_csv(METRICS, METRIC_COLUMNS, [{**dict.fromkeys(METRIC_COLUMNS, 0.0), "step": t} for t in range(steps)])
    folder.write_json(CONFIG, config.to_dict())
    folder.write_json(SUMMARY, {"steps": steps, "final_accuracy": accuracy[-1], "best_accuracy": max(accuracy)})
    return folder.path


@pytest.fixture
def finished_run():
    """A writer of hand-made finished run folders: ``finished_run(config, accuracy, losses=..., val=...)``."""
    return _write_finished_run


@pytest.fixture
def killed_at(monkeypatch):
    """``killed_at(config, step)``: run ``config`` until it is killed on reaching ``step`` (after its checkpoints);
    ``simulation``, the class whose step dies (a subclass that has its own, the decentralised one)."""
    from simulator import run
    from simulator.core.simulation import Simulation

    def kill(config: Config, step: int, simulation: type = Simulation) -> None:
        original = simulation.step

        def dying(self):
            if self.t == step:
                raise RuntimeError("killed")
            return original(self)

        monkeypatch.setattr(simulation, "step", dying)
        with pytest.raises(RuntimeError, match="killed"):
            run(config, progress=False)
        monkeypatch.setattr(simulation, "step", original)
    return kill
