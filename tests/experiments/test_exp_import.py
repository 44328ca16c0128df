import subprocess
import sys

import experiments

CHECK = """
import sys, torch
state = torch.get_rng_state()
hook = sys.excepthook
import experiments, experiments.models, experiments.datasets
assert torch.equal(torch.get_rng_state(), state) and sys.excepthook is hook
assert torch.get_default_dtype() == torch.float32
assert not any(m in sys.modules for m in ("torchvision", "sklearn")), "heavy imports at import time"
"""


def test_import_is_silent_and_changes_no_global_state():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_public_names():
    assert set(experiments.__all__) == {
        "Configuration", "Model", "Dataset", "Loss", "Criterion", "Optimizer", "Checkpoint", "Storage",
        "make_datasets", "batch_dataset", "make_sampler", "get_default_transform",
        "UserException", "UnavailableException"}
    assert all(hasattr(experiments, name) for name in experiments.__all__)
