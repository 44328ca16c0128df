import pytest

from simulator.core.config import Config


@pytest.fixture
def small(tmp_path):
    """A factory of small, fast digits configurations writing under tmp_path."""
    def make(**changes):
        base = dict(dataset="digits", nb_workers=7, nb_decl_byz=1, batch_size=16, steps=12, lr=0.1,
                    eval_every=4, checkpoint_every=4, seed=7, output=str(tmp_path / "runs"))
        return Config(**{**base, **changes})
    return make
