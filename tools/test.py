"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--out results.json] [--export-mat DIR]``.

CONFIG is a file or a config shipped with lrfr (``lrfr::demo/...``). The checkpoint, the model and the test
dataset are checked before the run starts; a user error ends the tool with one ``error:`` line and status 2.

Prints the benchmark table (from the config's metric). On request the identification metric itself writes
the features as the official TinyFace .mat files and CMC / precision-recall plots (this tool only sets its
``export_mat_dir`` / ``plot_dir`` / ``per_probe_file`` options), and this tool writes the metrics, the
per-probe AP and first-match ranks, the seed and the config's ``benchmark`` entry as JSON (``--out``).
``--show-dir DIR`` draws the failed probes (and a few correct ones) with their top-k gallery faces and true
match as PNG grids (:mod:`lrfr.visualization.failure_grids`). ``--random-init`` evaluates the model at its
seeded initialisation instead of a checkpoint (the untrained reference row of the benchmark).
"""
import argparse
import json
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.runner import Runner

from _tool_args import add_common_args, finish_args, report_errors
from lrfr.apis import load_checkpoint_strict
from lrfr.apis.checkpoint import check_checkpoint_file
from lrfr.evaluation.reporting import write_results_json
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import LOADERS, add_speed_hook, check_config, load_config
from lrfr.visualization import add_failure_grids

RANDOM_INIT = 'random-init'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an lrfr model')
    parser.add_argument('config', help='config file, or a shipped config: lrfr::demo/centreface_1xb32_demo-hr.py')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (omit with --random-init)')
    parser.add_argument('--random-init', action='store_true',
                        help='evaluate the model at its initialisation (seeded by randomness.seed)')
    parser.add_argument('--work-dir', help='directory for logs and plots')
    parser.add_argument('--out', help='write metrics, per-probe results, config, checkpoint, seed and date '
                        'to this JSON file')
    parser.add_argument('--export-mat', metavar='DIR',
                        help='write probe.mat, gallery.mat, distractor.mat for the official MATLAB script')
    parser.add_argument('--no-plots', action='store_true', help='skip the CMC / PR curve PNGs')
    parser.add_argument('--show-dir', metavar='DIR',
                        help='draw a PNG grid (probe, top-5 gallery faces, true match, distances) for every '
                        'failed probe (up to 50) and 5 correct ones under DIR/failures and DIR/correct')
    parser.add_argument('--channels-last', action='store_true',
                        help='channels-last memory format for the model and its input batches (GPU switch)')
    add_common_args(parser)
    args = finish_args(parser.parse_args())
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a CHECKPOINT or --random-init (one of the two)')
    return args


def plot_title(config: str, checkpoint: Optional[str]) -> str:
    """What the CMC / PR plots show: the config's file name and the checkpoint with its folder (``final.pth``
    alone would not say which run), e.g. ``csri_....py | csri_.../final.pth``."""
    if checkpoint is None:
        shown = RANDOM_INIT
    else:
        parent = osp.basename(osp.dirname(osp.abspath(checkpoint)))
        shown = osp.join(parent, osp.basename(checkpoint)) if parent else osp.basename(checkpoint)
    return f'{osp.basename(config)} | {shown}'


def request_outputs(cfg: Config, export_mat_dir: Optional[str], plot_dir: Optional[str],
                    per_probe_dir: Optional[str], title: Optional[str] = None) -> Dict[str, str]:
    """Set the output options of every IdentificationMetric in ``cfg.test_evaluator`` (``title``: what
    the plots show, see :func:`plot_title`).

    With several such metrics each gets a sub-folder ``<i>``. Returns metric prefix -> per-probe file.
    """
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    metrics: List[dict] = [e for e in evaluators if e.get('type') == 'IdentificationMetric']
    per_probe: Dict[str, str] = {}
    for i, metric in enumerate(metrics):
        sub = '' if len(metrics) == 1 else str(i)
        if export_mat_dir:
            metric['export_mat_dir'] = osp.join(export_mat_dir, sub) if sub else export_mat_dir
        if plot_dir:
            metric['plot_dir'] = osp.join(plot_dir, sub) if sub else plot_dir
            if title:
                metric['plot_title'] = title
        if per_probe_dir:
            prefix = metric.get('prefix') or 'tinyface'
            metric['per_probe_file'] = per_probe[prefix] = osp.join(per_probe_dir, f'{i}.json')
    if (export_mat_dir or plot_dir) and not metrics:
        print('no IdentificationMetric in the test evaluator: no .mat files or CMC/PR plots to write')
    return per_probe


def main() -> None:
    args = parse_args()
    if args.checkpoint is not None:
        check_checkpoint_file(args.checkpoint)
    register_all_modules()  # before the config is read: mmpretrain:: bases need lrfr.compat's fixes
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from, cfg.resume = None, False  # loaded strictly below instead
    add_speed_hook(cfg, channels_last=args.channels_last)
    model = check_config(cfg, LOADERS['test'])
    if not args.random_init:  # a checkpoint of another model is refused before the run starts
        load_checkpoint_strict(model, args.checkpoint, config_name=args.config)
    del model
    per_probe_dir = tempfile.mkdtemp(prefix='lrfr_per_probe_') if args.out else None
    try:
        per_probe = request_outputs(cfg, args.export_mat, None if args.no_plots else cfg.work_dir,
                                    per_probe_dir, plot_title(args.config, args.checkpoint))
        if args.show_dir and not add_failure_grids(cfg, args.show_dir):
            print('no IdentificationMetric in the test evaluator: no failure grids to draw')
        runner = Runner.from_cfg(cfg)
        if args.random_init:
            runner.model.init_weights()  # the configured initialisation, after the Runner seeded it
        else:
            load_checkpoint_strict(runner.model, args.checkpoint, config_name=args.config)
        metrics = runner.test()
        if args.out and is_main_process():
            records = {}
            for prefix, path in per_probe.items():
                with open(path) as f:
                    records[prefix] = json.load(f)
            write_results_json(args.out, metrics, args.config,
                               RANDOM_INIT if args.random_init else args.checkpoint,
                               seed=(cfg.get('randomness') or {}).get('seed'),
                               benchmark=cfg.get('benchmark'), per_probe=records)
            print(f'results written to {args.out}')
    finally:
        if per_probe_dir:
            shutil.rmtree(per_probe_dir, ignore_errors=True)


if __name__ == '__main__':
    report_errors(main)
