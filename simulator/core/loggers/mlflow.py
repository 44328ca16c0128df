"""MLflow: a local file store in ``<run folder>/mlruns/`` unless a tracking URI is given.

The configuration fields are the MLflow run's parameters, each row's values its metrics at the row's
step, and the final and best values metrics at the last step. ``mlflow(tracking_uri=...)`` (or
MLflow's ``MLFLOW_TRACKING_URI``) sends every run to one store, e.g. a grid's to
``'file:///path/mlruns'``, ``'sqlite:///grid.db'`` or a tracking server (quoted in a spec);
``experiment`` names the MLflow experiment. MLflow 3 keeps its file store in maintenance mode and
refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is true, which this logger sets when it writes to a file
store (a handful of small files, no database, safe for concurrent grid workers).

A run is found again by its tags (``byzsim.run_id``, ``byzsim.folder``): a resumed run continues its
MLflow run and skips the steps that run already holds.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

from simulator.core.config import Config
from simulator.core.loggers import Logger, hyperparameters, outcome, register

FOLDER = "mlruns"


@register("mlflow")
class MLflow(Logger):
    """MLflow run, in a file store in <run>/mlruns/ unless a tracking URI is given"""

    requires = "mlflow"
    tracking_uri: str | None = None
    experiment: str = "byzsim"

    def start(self, config: Config, folder: Path) -> None:
        from mlflow.tracking import MlflowClient  # lazy: an optional dependency

        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or (folder / FOLDER).resolve().as_uri()
        if urlparse(uri).scheme in ("", "file"):  # a file store, which MLflow 3 takes only with consent
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(uri)
        tags = {"byzsim.run_id": config.run_id(), "byzsim.folder": str(folder.resolve())}
        experiment = self._experiment()
        same_id = self.client.search_runs([experiment], f"tags.`byzsim.run_id` = '{config.run_id()}'")
        earlier = [run for run in same_id if run.data.tags.get("byzsim.folder") == tags["byzsim.folder"]]
        if earlier:
            self.id = earlier[0].info.run_id
            self.client.update_run(self.id, status="RUNNING")
        else:
            self.id = self.client.create_run(experiment, run_name=config.run_id(), tags=tags).info.run_id
            self._params(hyperparameters(config))

    def _experiment(self) -> str:
        """The experiment's id, created on first use (by another grid worker, perhaps, at the same time)."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self.client.create_experiment(self.experiment)
            except Exception:  # created meanwhile by another process
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        return found.experiment_id

    def _params(self, params: dict) -> None:
        from mlflow.entities import Param  # lazy: an optional dependency

        self.client.log_batch(self.id, params=[Param(k, str(v)) for k, v in params.items()])

    def held(self) -> dict[str, int]:
        names = self.client.get_run(self.id).data.metrics
        return {name: max(m.step for m in self.client.get_metric_history(self.id, name)) for name in names}

    def log(self, step: int, row: dict[str, float]) -> None:
        from mlflow.entities import Metric  # lazy: an optional dependency

        now = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[Metric(k, float(v), now, step) for k, v in row.items()])

    def finish(self, summary: dict | None) -> None:
        if summary is not None:
            self.log(summary["steps"], outcome(summary))
        self.client.set_terminated(self.id, "FINISHED" if summary is not None else "KILLED")
