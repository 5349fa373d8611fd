"""EpochSeedHook: an epoch's random draws depend only on (seed, epoch)."""
import random
from types import SimpleNamespace

import numpy as np
import torch

from lrfr.engine.hooks import EpochSeedHook
from lrfr.registry import HOOKS


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def _runner(epoch, seed=0):
    return SimpleNamespace(seed=seed, epoch=epoch, _randomness_cfg={})


def test_same_epoch_same_draws_whatever_came_before():
    hook = HOOKS.build(dict(type='EpochSeedHook'))
    hook.before_train_epoch(_runner(epoch=1))
    first = _draws()
    np.random.rand(1000)  # a different history, e.g. an uninterrupted epoch 0
    hook.before_train_epoch(_runner(epoch=1))
    assert _draws() == first
    hook.before_train_epoch(_runner(epoch=2))
    assert _draws() != first


def test_no_seed_leaves_generators_alone():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    EpochSeedHook().before_train_epoch(_runner(epoch=0, seed=None))
    assert np.random.rand() == expected
