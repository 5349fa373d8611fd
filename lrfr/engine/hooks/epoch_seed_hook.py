"""Reseed the global random generators at every epoch, so that resuming reproduces an uninterrupted run."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import set_random_seed

from lrfr.registry import HOOKS


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Set Python's, numpy's and torch's seeds to ``seed + epoch`` before each training epoch.

    Random augmentations (flips, degradations drawn from numpy's global generator) and dropout otherwise
    depend on every draw made since the process started. mmengine's checkpoints do not hold those
    generator states, so a run resumed at epoch ``e`` draws different augmentations than the uninterrupted
    run did, and the weights drift apart. Reseeding from ``(seed, epoch)`` makes each epoch's draws a
    function of the two alone. Iteration-based runs have one "epoch": mmengine replays the skipped
    batches on resume, which reproduces the same draws from the same start.

    With ``num_workers > 0`` the workers draw from their own generators (mmengine's ``worker_init_fn``
    seeds them when they start), so this hook covers the main-process loading used on small CPU jobs.
    Does nothing when the run has no seed (``randomness=dict(seed=None)``).

    Args:
        offset (int): added to ``seed + epoch``, to decorrelate from the seed used at start-up.
            Defaults to 1.
    """

    priority = 'VERY_HIGH'

    def __init__(self, offset: int = 1) -> None:
        self.offset = offset

    def before_train_epoch(self, runner) -> None:
        seed: Optional[int] = runner.seed
        if seed is None:
            return
        diff_rank_seed = runner._randomness_cfg.get('diff_rank_seed', False)
        set_random_seed(seed + self.offset + runner.epoch, diff_rank_seed=diff_rank_seed)
