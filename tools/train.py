"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT|auto]] [--amp]
[--no-validate] [--auto-scale-lr] [--channels-last] [--compile [--compile-backend NAME]]``.

CONFIG is a file or a config shipped with lrfr (``lrfr::demo/centreface_1xb32_demo-hr.py``). The model and the
datasets are built once before the run starts, so a wrong key or a missing data folder ends the tool with one
``error:`` line (``--debug`` for the traceback) instead of a traceback after mmengine's environment dump.
"""
import argparse
from typing import Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log
from mmengine.runner import Runner

from _tool_args import add_common_args, finish_args, report_errors
from lrfr.apis import publish_final_checkpoint
from lrfr.apis.checkpoint import check_checkpoint_file, last_checkpoint
from lrfr.errors import CheckpointError
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import (LOADERS, add_speed_hook, check_config, enable_amp, enable_auto_scale_lr,
                                     load_config, scaled_lr)

#: ``--resume`` without a value: the latest checkpoint of the work dir, which must exist.
RESUME_LATEST = 'latest'
#: ``--resume auto``: the latest checkpoint if there is one, else a fresh start.
RESUME_AUTO = 'auto'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an lrfr model')
    parser.add_argument('config', help='config file, or a shipped config: lrfr::demo/centreface_1xb32_demo-hr.py')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const=RESUME_LATEST, metavar='CKPT|auto',
        help='resume from CKPT; without a value, from the latest checkpoint in the work dir (an error if there '
             'is none); "--resume auto": resume if the work dir has a checkpoint, else start from scratch')
    parser.add_argument('--amp', action='store_true', help='mixed precision (bf16/fp16) on GPU; off on CPU')
    parser.add_argument('--no-validate', action='store_true',
                        help='train without validation (no val_dataloader / val_evaluator needed)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr linearly by (processes x batch per process) / the config\'s '
                             'auto_scale_lr.base_batch_size')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last memory format for the model and its input batches (GPU switch)')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile the SR head, backbone and neck in place (GPU switch)')
    parser.add_argument('--compile-backend', default='inductor', metavar='NAME',
                        help='torch.compile backend for --compile (default: inductor; eager: trace only)')
    add_common_args(parser)
    return finish_args(parser.parse_args())


def resume_checkpoint(resume: Optional[str], work_dir: str) -> Optional[str]:
    """The checkpoint to resume from for ``--resume`` (``None``: start from scratch).

    Raises:
        CheckpointError: ``--resume`` without a value and the work dir has no checkpoint (an empty or
            mistyped ``--work-dir``), or the named checkpoint is missing or truncated.
    """
    if resume is None:
        return None
    if resume in (RESUME_LATEST, RESUME_AUTO):
        found = last_checkpoint(work_dir)
        if found is None:
            if resume == RESUME_AUTO:
                print_log(f'--resume auto: no checkpoint in {work_dir}; training from scratch', logger='current')
                return None
            raise CheckpointError(f'--resume: nothing to resume in {work_dir} (no last_checkpoint record or its '
                                  'file is gone); check --work-dir, or use "--resume auto" to start from scratch '
                                  'when there is none')
        return check_checkpoint_file(found, f'--resume: the latest checkpoint of {work_dir},')
    return check_checkpoint_file(resume, '--resume checkpoint')


def disable_validation(cfg: Config) -> None:
    """Drop the validation loop: mmengine's Runner needs ``val_cfg``, ``val_dataloader`` and
    ``val_evaluator`` all set or all ``None``."""
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if cfg.get('train_cfg'):
        cfg.train_cfg.pop('val_interval', None)
        cfg.train_cfg.pop('val_begin', None)


def main() -> None:
    args = parse_args()
    register_all_modules()  # before the config is read: mmpretrain:: bases need lrfr.compat's fixes
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.no_validate:
        disable_validation(cfg)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    add_speed_hook(cfg, channels_last=args.channels_last, compile=args.compile and args.compile_backend)
    checkpoint = resume_checkpoint(args.resume, cfg.work_dir)
    if checkpoint is not None:
        cfg.resume, cfg.load_from = True, checkpoint
    elif cfg.get('load_from') and '://' not in cfg.load_from:
        try:
            check_checkpoint_file(cfg.load_from, 'load_from checkpoint')
        except CheckpointError as exc:
            raise CheckpointError(f'{exc} (train the run it names first, or pass --cfg-options load_from=None '
                                  'to start from the initialisation)') from exc
    check_config(cfg, LOADERS['train'])
    runner = Runner.from_cfg(cfg)
    if args.auto_scale_lr:  # the Runner scales when training starts; the world size is known from here
        scale = scaled_lr(cfg, runner.world_size)
        lr = 'every lr' if scale['lr'] is None else f'lr {scale["base_lr"]:g}'
        result = '' if scale['lr'] is None else f' = {scale["lr"]:g}'
        print_log(f'--auto-scale-lr: world batch {scale["world_batch"]} / base batch {scale["base_batch"]}: '
                  f'{lr} x {scale["ratio"]:g}{result}', logger='current')
    runner.train()
    if is_main_process():
        final = publish_final_checkpoint(runner.work_dir)
        if final:
            runner.logger.info(f'final checkpoint: {final}')


if __name__ == '__main__':
    report_errors(main)
