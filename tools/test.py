"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out results.json] [--export-mat DIR]``.

Prints the benchmark table (from the config's metric), and on request writes the metrics as JSON, the
features as the official TinyFace .mat files, and CMC / precision-recall plots into the work dir.
"""
import argparse
import os.path as osp

from mmengine.runner import Runner

from _tool_args import add_common_args, finish_args
from lrfr.apis import load_checkpoint_strict
from lrfr.apis.test_outputs import request_features, write_test_outputs
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an lrfr model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for logs and plots')
    parser.add_argument('--out', help='write metrics, config, checkpoint and date to this JSON file')
    parser.add_argument('--export-mat', metavar='DIR',
                        help='write probe.mat, gallery.mat, distractor.mat for the official MATLAB script')
    parser.add_argument('--no-plots', action='store_true', help='skip the CMC / PR curve PNGs')
    add_common_args(parser)
    return finish_args(parser.parse_args())


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    register_all_modules()  # before the config is read: mmpretrain:: bases need lrfr.compat's fixes
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from, cfg.resume = None, False  # loaded strictly below instead
    if args.export_mat:
        request_features(cfg)
    runner = Runner.from_cfg(cfg)
    load_checkpoint_strict(runner.model, args.checkpoint, config_name=args.config)
    metrics = runner.test()
    write_test_outputs(runner, metrics, config=args.config, checkpoint=args.checkpoint, out=args.out,
                       export_mat_dir=args.export_mat, plot_dir=None if args.no_plots else runner.work_dir)


if __name__ == '__main__':
    main()
