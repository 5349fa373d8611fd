"""Command-line options shared by lrfr's tools, and how they end: ``error: <message>`` and exit status 2.

tools/ is not a package: the tools import this file as ``_tool_args``, which works because Python puts a
script's own folder first on ``sys.path`` (``python tools/train.py``, and torchrun's children alike); tools in
sub-folders add ``tools/`` to the path first.
"""
import argparse
import os
import shutil
import sys
from typing import Callable, Mapping, Optional

from mmengine.config import DictAction

from lrfr.compat import trust_checkpoints
from lrfr.errors import LRFRError, one_line

#: Launchers mmengine's Runner accepts (``none``: one process).
LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')

#: Exit status of a tool stopped by a user error (argparse uses the same for bad arguments).
USER_ERROR_STATUS = 2

#: Environment variables each launcher's ``mmengine.dist.init_dist`` reads (mmengine 0.10.7,
#: ``mmengine/dist/utils.py``), and who sets them.
LAUNCH_ENV = {
    'pytorch': (('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'),
                'start the tool with torchrun: bash tools/dist_train.sh CONFIG NUM_PROCS'),
    'slurm': (('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'),
              'start the tool with srun: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG'),
    'mpi': (('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'MASTER_ADDR'),
            'start the tool with Open MPI\'s mpirun, MASTER_ADDR exported'),
}


def user_errors() -> tuple:
    """What a tool reports in one line: lrfr's own errors, an unreadable face image (raised while training
    or testing, possibly in a dataloader worker) and missing files. Imported here, not at the top, so that
    a tool imports lrfr's datasets (and mmcv) only after ``register_all_modules`` applied the stack fixes."""
    from lrfr.datasets.transforms.loading import FaceImageError
    return (LRFRError, FaceImageError, FileNotFoundError, NotADirectoryError, FileExistsError)


class LaunchError(LRFRError, RuntimeError):
    """A ``--launcher`` whose process environment is missing: the tool was not started by that launcher."""


def check_launch_env(launcher: str, environ: Optional[Mapping[str, str]] = None) -> None:
    """Check, before mmengine's ``init_dist``, that the launcher's variables are set (:data:`LAUNCH_ENV`).

    Without them ``init_dist`` fails with a bare ``KeyError: 'SLURM_PROCID'``; for slurm it also needs
    ``MASTER_ADDR`` or ``scontrol`` on ``PATH`` (it takes the first host of ``SLURM_NODELIST`` from
    ``scontrol show hostnames``, and would otherwise use the shell's "not found" message as the address), and
    ``SLURM_LOCALID`` where there is no GPU (else it divides the rank by the GPU count, zero).

    Raises:
        LaunchError: one line naming the missing variables and how to start the tool.
    """
    if launcher not in LAUNCH_ENV:
        return
    env = os.environ if environ is None else environ
    names, how = LAUNCH_ENV[launcher]
    missing = [name for name in names if not env.get(name)]
    if launcher == 'slurm' and not missing:
        if not env.get('MASTER_ADDR') and shutil.which('scontrol', path=env.get('PATH')) is None:
            missing.append('MASTER_ADDR (or scontrol on PATH)')
        if not env.get('SLURM_LOCALID'):
            import torch
            if not torch.cuda.is_available():
                missing.append('SLURM_LOCALID (needed without a GPU)')
    if missing:
        raise LaunchError(f'--launcher {launcher}: {", ".join(missing)} not set in the environment; {how}')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` (``key=value`` pairs, values parsed as Python literals), with a clear
    argparse error for an item without ``=`` instead of ``not enough values to unpack``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values or ():
            key, sep, _ = item.partition('=')
            if not sep or not key:
                parser.error(f'{option_string} {item!r}: expected KEY=VALUE, e.g. {item or "key"}=1 '
                             '(dotted keys for nested entries: train_cfg.max_iters=1000)')
        super().__call__(parser, namespace, values, option_string)


def add_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options KEY=VALUE ...`` (config overrides, checked for ``=``)."""
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config keys, e.g. train_cfg.max_iters=1000 model.flip_test=True')


def add_debug(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug``: show the full traceback of an error instead of the one-line message."""
    parser.add_argument('--debug', action='store_true',
                        help='on an error, show the full traceback instead of one "error:" line')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add the options train.py and test.py take: checkpoint trust, config overrides, launcher, local rank,
    debug."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle checkpoints fully (weights_only=False): only for files you trust')
    add_cfg_options(parser)
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug(parser)


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Act on the shared options and return ``args``: opt in to trusted checkpoints if asked, export
    ``LOCAL_RANK`` for launchers that pass it as an argument (torch.distributed.launch) instead of the
    environment (torchrun, which wins: an existing ``LOCAL_RANK`` is kept), and check the launcher's
    environment (:func:`check_launch_env`).

    Raises:
        LaunchError: ``--launcher`` names a launcher whose variables are not set.
    """
    if args.trust_checkpoint:
        trust_checkpoints()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    check_launch_env(args.launcher)
    return args


def report_errors(main: Callable[[], None], argv=None) -> None:
    """Run a tool's ``main``; a user error (lrfr's own types, a missing file) ends it with one line on
    stderr, ``error: <message>``, and exit status 2, unless ``--debug`` is on the command line (then the
    traceback shows). Other exceptions are bugs and keep their traceback.

    ``--debug`` is read from ``argv`` (default ``sys.argv``) directly, so that errors raised while the
    arguments themselves are acted on are covered too.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        main()
    except user_errors() as exc:
        if '--debug' in argv:
            raise
        sys.stdout.flush()
        print(f'error: {one_line(exc)}', file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)


__all__ = ['LAUNCHERS', 'USER_ERROR_STATUS', 'LAUNCH_ENV', 'LaunchError', 'check_launch_env', 'user_errors',
           'CfgOptionsAction', 'add_cfg_options', 'add_debug', 'add_common_args', 'finish_args', 'report_errors']
