"""Command-line options shared by ``tools/train.py`` and ``tools/test.py``.

tools/ is not a package: both scripts import this file as ``_tool_args``, which works because Python puts a
script's own folder first on ``sys.path`` (``python tools/train.py``, and torchrun's children alike).
"""
import argparse
import os

from mmengine.config import DictAction

from lrfr.compat import trust_checkpoints

#: Launchers mmengine's Runner accepts (``none``: one process).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add the options both tools take: checkpoint trust, config overrides, launcher, local rank."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle checkpoints fully (weights_only=False): only for files you trust')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys, e.g. train_cfg.max_iters=1000 model.flip_test=True')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Act on the shared options and return ``args``: opt in to trusted checkpoints if asked, and export
    ``LOCAL_RANK`` for launchers that pass it as an argument (torch.distributed.launch) instead of the
    environment (torchrun, which wins: an existing ``LOCAL_RANK`` is kept)."""
    if args.trust_checkpoint:
        trust_checkpoints()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args
