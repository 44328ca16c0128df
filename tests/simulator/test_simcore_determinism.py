"""A GPU run asks cuDNN for deterministic kernels; a CPU run leaves torch's settings alone."""
import pytest
import torch

from simulator.core.run import deterministic_kernels


@pytest.fixture
def cudnn_flags():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def test_a_gpu_device_turns_on_deterministic_cudnn_without_autotuning(cudnn_flags):
    deterministic_kernels("cuda:1")  # flags only: no GPU needed to set them
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


def test_a_cpu_device_changes_nothing(cudnn_flags):
    deterministic_kernels("cpu")
    assert not torch.backends.cudnn.deterministic and torch.backends.cudnn.benchmark
