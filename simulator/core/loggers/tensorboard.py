"""TensorBoard: event files in ``<run folder>/tensorboard/``, through torch's `SummaryWriter`.

Each metrics and evaluation column is a scalar under its CSV name, at the row's step; the finished
run's configuration goes to the hparams dashboard, with its final and best values as the metrics.
``tensorboard --logdir results/runs/<grid>`` shows every run of a grid, one TensorBoard run per run
folder. A resumed run writes a new event file beside the earlier ones, from the step it resumes at.
"""
from __future__ import annotations

from pathlib import Path

from simulator.core.config import Config
from simulator.core.loggers import Logger, hyperparameters, outcome, register

FOLDER = "tensorboard"


@register("tensorboard")
class TensorBoard(Logger):
    """scalars and hyperparameters in <run>/tensorboard/, for `tensorboard --logdir`"""

    requires = "tensorboard"

    def start(self, config: Config, folder: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: an optional dependency (tensorboard)

        self.folder = folder / FOLDER
        self.config = config
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def held(self) -> dict[str, int]:
        """The last step of every scalar in the event files of earlier sittings (this one's is still empty)."""
        from tensorboard.backend.event_processing import event_accumulator  # lazy: an optional dependency

        # A reservoir of one keeps the last value of each tag (TensorBoard always keeps the newest).
        events = event_accumulator.EventAccumulator(str(self.folder), size_guidance={event_accumulator.SCALARS: 1})
        scalars = events.Reload().Tags()["scalars"]
        return {tag: events.Scalars(tag)[-1].step for tag in scalars}

    def log(self, step: int, row: dict[str, float]) -> None:
        for name, value in row.items():
            self.writer.add_scalar(name, value, step)

    def finish(self, summary: dict | None) -> None:
        if summary is not None:
            self.writer.add_hparams(hyperparameters(self.config), outcome(summary), run_name=".",
                                    global_step=summary["steps"])  # ".": this run's folder, not a new one
        self.writer.close()
