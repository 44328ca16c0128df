import pytest
import torch

from experiments import Configuration, Criterion, Loss, Model, Optimizer, UnavailableException, UserException

CPU = Configuration(device="cpu", dtype=torch.float32)


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _reference_gradient(model, inputs, targets):
    """The gradient computed by plain autograd (this drops the gradient views)."""
    module = model.module
    module.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(module.train()(inputs), targets).backward()
    grad = torch.cat([p.grad.reshape(-1) for p in module.parameters()])
    return grad


def test_parameters_are_views_into_the_flat_vector():
    model = Model("simples-digits", CPU, init_seed=0)
    flat = model.get()
    assert flat.dim() == 1 and flat.numel() == sum(p.numel() for p in model.module.parameters())
    with torch.no_grad():
        flat.zero_()
    assert all((p == 0).all() for p in model.module.parameters())
    model.set(torch.arange(flat.numel(), dtype=torch.float32))
    assert model.get() is flat and flat[5].item() == 5.0
    first = next(model.module.parameters())
    assert first.data_ptr() == flat.data_ptr()


def test_relink_adopts_the_given_vector():
    model = Model("simples-digits", CPU)
    vector = torch.full_like(model.get(), 2.0)
    model.set(vector, relink=True)
    assert model.get() is vector
    vector.fill_(3.0)
    assert all((p == 3.0).all() for p in model.module.parameters())
    with pytest.raises(UserException, match="Cannot relink"):
        model.set(torch.zeros(vector.numel(), dtype=torch.float64), relink=True)
    with pytest.raises(UserException, match="shape"):
        model.set(torch.zeros(3))


def test_backprop_gives_the_autograd_gradient_through_the_gradient_views():
    model = Model("simples-digits", CPU, init_seed=0)
    inputs, targets = _batch()
    gradient, loss = model.backprop(_Fixed(inputs, targets), Loss("crossentropy"), outloss=True)
    assert loss.shape == () and loss.item() > 0
    assert torch.equal(gradient, model.get_gradient()) and gradient is not model.get_gradient()
    assert _grads_are_views(model)
    second = model.backprop(_Fixed(inputs, targets), Loss("crossentropy"))
    assert torch.allclose(second, gradient)  # zeroed between calls, not accumulated
    assert torch.allclose(gradient, _reference_gradient(model, inputs, targets), atol=1e-6)
    assert torch.allclose(model.backprop(_Fixed(inputs, targets), Loss("crossentropy")), gradient)
    assert _grads_are_views(model)  # restored after set_to_none dropped them


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph")
def test_backprop_with_create_graph_keeps_the_flat_gradient_in_sync():
    model = Model("simples-digits", CPU, init_seed=0)
    inputs, targets = _batch()
    expected = model.backprop(_Fixed(inputs, targets), Loss("crossentropy"))
    gradient = model.backprop(_Fixed(inputs, targets), Loss("crossentropy"), create_graph=True)
    assert torch.allclose(gradient, expected)
    assert _grads_are_views(model)


def test_l2_regulariser_gradient_flows_to_the_parameters():
    model = Model("simples-digits", CPU, init_seed=0)
    gradient = model.backprop(_Fixed(*_batch()), Loss(lambda o, t, p: 0 * o.sum()) + 0.5 * Loss("l2"))
    assert torch.allclose(gradient, model.get())  # d/dθ (0.5 ||θ||²) = θ


def test_set_gradient_copy_and_relink():
    model = Model("simples-digits", CPU)
    flat = model.get_gradient()
    model.set_gradient(torch.ones_like(flat))
    assert model.get_gradient() is flat and (flat == 1).all()
    other = torch.full_like(flat, 4.0)
    model.set_gradient(other, relink=True)
    assert model.get_gradient() is other
    assert all((p.grad == 4.0).all() for p in model.module.parameters())


def test_training_runs_in_training_mode_and_evaluation_does_not():
    model = Model("simples-cifar", CPU, init_seed=0)
    batch_norm = next(m for m in model.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    inputs = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0, 1, 2, 3])
    model.backprop(_Fixed(inputs, targets), Loss("crossentropy"))
    assert batch_norm.num_batches_tracked.item() == 1
    model.eval(_Fixed(inputs, targets), Criterion("top-k"))
    model.run(inputs)
    assert batch_norm.num_batches_tracked.item() == 1 and not model.module.training
    with torch.no_grad():
        model.loss(_Fixed(inputs, targets), Loss("crossentropy"))
    assert batch_norm.num_batches_tracked.item() == 1
    model.loss(_Fixed(inputs, targets), Loss("crossentropy"), training=True)
    assert batch_norm.num_batches_tracked.item() == 2


def test_defaults_drive_a_short_training_run():
    model = Model("simples-digits", CPU, init_seed=0)
    inputs, targets = _batch(64)
    data = _Fixed(inputs, targets)
    assert model.default("trainset", data) is None
    assert model.default("trainset") is data
    model.default("testset", data)
    model.default("loss", Loss("crossentropy"))
    model.default("criterion", Criterion("top-k"))
    model.default("optimizer", Optimizer("sgd", model, lr=0.5))
    before = model.loss()
    for _ in range(30):
        model.update(model.backprop())
    assert model.loss() < before and model.eval().item() > 0.3
    assert model.default("testset", erase=True) is data and model.default("testset") is None
    with pytest.raises(UserException, match="testset"):
        model.eval()
    with pytest.raises(UnavailableException, match="trainset"):
        model.default("trainsett")


def test_init_seed_reproduces_without_touching_the_global_rng():
    state = torch.get_rng_state()
    a, b = Model("simples-conv", CPU, init_seed=3), Model("simples-conv", CPU, init_seed=3)
    assert torch.equal(a.get(), b.get())
    assert not torch.equal(a.get(), Model("simples-conv", CPU, init_seed=4).get())
    assert torch.equal(torch.get_rng_state(), state)


def test_initializers_by_torch_init_name():
    model = Model("simples-full", CPU, "constant", {"val": 0.5}, "zeros_")
    for p in model.module.parameters():
        assert (p == (0.5 if p.dim() >= 2 else 0.0)).all()
    with pytest.raises(UnavailableException, match="xavier_normal"):
        Model("simples-full", CPU, init_multi="xavier_normall")


def test_names_kwargs_and_construction_errors():
    assert Model("simples-full", CPU, num_classes=3).run(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    assert Model("simples-conv", CPU).run(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert Model("simples-digits", CPU).run(torch.zeros(2, 64)).shape == (2, 10)
    assert Model("simples-logit", CPU, in_features=5, num_classes=2).run(torch.zeros(1, 5)).shape == (1, 2)
    assert Model(lambda: torch.nn.Linear(3, 1), CPU).get().numel() == 4
    with pytest.raises(UnavailableException, match="Did you mean 'simples-full'"):
        Model("simples-ful", CPU)
    with pytest.raises(UserException, match="not a torch.nn.Module"):
        Model(lambda: 3, CPU)
    with pytest.raises(UserException, match="Invalid arguments"):
        Model("simples-full", CPU, nb_classes=3)


def test_module_works_with_functional_call_and_vmap():
    model = Model("simples-digits", CPU, init_seed=0)
    params = dict(model.module.named_parameters())
    inputs = torch.rand(3, 2, 64, generator=torch.Generator().manual_seed(0))
    batched = torch.func.vmap(lambda x: torch.func.functional_call(model.module, params, (x,)))(inputs)
    assert torch.allclose(batched[1], model.run(inputs[1]))
    assert model.config is CPU and str(model) == "model simples-digits"


def _grads_are_views(model):
    storage = model.get_gradient().untyped_storage().data_ptr()
    return all(p.grad.untyped_storage().data_ptr() == storage for p in model.module.parameters())


class _Fixed:
    """A minimal dataset: always the same batch."""

    def __init__(self, inputs, targets):
        self.batch = (inputs, targets)

    def sample(self, config=None):
        return self.batch
