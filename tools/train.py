"""Train a model from a config: ``python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]``."""
import argparse

from mmengine.dist import is_main_process
from mmengine.runner import Runner

from _tool_args import add_common_args, finish_args
from lrfr.apis import publish_final_checkpoint
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import enable_amp, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an lrfr model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work dir when no path is given')
    parser.add_argument('--amp', action='store_true', help='mixed precision (bf16/fp16) on GPU; off on CPU')
    add_common_args(parser)
    return finish_args(parser.parse_args())


def main() -> None:
    args = parse_args()
    register_all_modules()  # before the config is read: mmpretrain:: bases need lrfr.compat's fixes
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    if is_main_process():
        final = publish_final_checkpoint(runner.work_dir)
        if final:
            runner.logger.info(f'final checkpoint: {final}')


if __name__ == '__main__':
    main()
