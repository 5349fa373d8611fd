"""Shared pytest setup: quiet, single-threaded torch so the tests behave the same on 2 cores."""
import os

import pytest
import torch

os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
