"""Shared pytest setup: seeded, single-threaded torch so the tests behave the same on 2 busy cores."""
import pytest
import torch

# Two threads on two shared cores oversubscribe them; one thread is faster and repeatable here.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
