"""Shared pytest setup: seeded, single-threaded torch so the tests behave the same on 2 busy cores, and the
stack fixes a tool process gets (``lrfr.compat.apply``, as ``register_all_modules`` does in the tools)."""
import pytest
import torch

from lrfr import compat

# Two threads on two shared cores oversubscribe them; one thread is faster and repeatable here.
torch.set_num_threads(1)
# Tests run models, Runners and checkpoints in-process, as the tools do after register_all_modules().
compat.apply()


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
