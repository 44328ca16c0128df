"""The substrate of byzsim: models, datasets, losses, optimizers and checkpoints.

- `Configuration`: device, dtype and transfer settings.
- `Model`: a module whose parameters and gradients are views into flat vectors.
- `Dataset`, `make_datasets`, `batch_dataset`, `make_sampler`,
  `get_default_transform`: infinite batch streams (offline dataset readers live
  in `experiments.datasets`, custom models in `experiments.models`).
- `Loss`, `Criterion`: composable derivable losses and evaluation metrics.
- `Optimizer`: `torch.optim` by name with learning-rate control.
- `Checkpoint`, `Storage`: snapshots of state dictionaries, saved atomically.

Importing this package prints nothing and changes no global state; torchvision
and scikit-learn are imported only when first needed.
"""
from experiments.checkpoint import Checkpoint, Storage
from experiments.configuration import Configuration
from experiments.dataset import Dataset, batch_dataset, get_default_transform, make_datasets, make_sampler
from experiments.loss import Criterion, Loss
from experiments.model import Model
from experiments.optimizer import Optimizer
from experiments.tools import UnavailableException, UserException

__all__ = ["Configuration", "Model", "Dataset", "Loss", "Criterion", "Optimizer", "Checkpoint", "Storage",
           "make_datasets", "batch_dataset", "make_sampler", "get_default_transform",
           "UserException", "UnavailableException"]
