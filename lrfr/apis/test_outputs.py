"""What ``tools/test.py`` writes after a test run: results JSON, official .mat features, CMC / PR plots."""
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.logging import print_log

from lrfr.evaluation.metrics import IdentificationMetric
from lrfr.evaluation.reporting import export_mat, plot_cmc, plot_pr, write_results_json


def request_features(cfg: Config) -> None:
    """Ask every identification metric of the test evaluator to keep its features (for ``--export-mat``)."""
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    for evaluator in evaluators:
        if evaluator.get('type') in ('IdentificationMetric', IdentificationMetric):
            evaluator['keep_features'] = True


def identification_metrics(runner) -> List[IdentificationMetric]:
    evaluator = runner.test_loop.evaluator
    return [m for m in evaluator.metrics if isinstance(m, IdentificationMetric)]


def write_test_outputs(runner, metrics: Dict[str, float], config: str, checkpoint: str,
                       out: Optional[str] = None, export_mat_dir: Optional[str] = None,
                       plot_dir: Optional[str] = None) -> None:
    """Write the requested outputs on the main process (the metrics are computed there).

    Args:
        runner: the mmengine Runner that ran ``test()``.
        metrics (dict): what ``runner.test()`` returned.
        config (str), checkpoint (str): recorded in the JSON.
        out (str, optional): results JSON path.
        export_mat_dir (str, optional): folder for ``probe.mat``, ``gallery.mat``, ``distractor.mat``.
        plot_dir (str, optional): folder for ``cmc.png`` and ``pr.png``.
    """
    if not is_main_process():
        return
    if out:
        print_log(f'results written to {write_results_json(out, metrics, config, checkpoint)}', logger='current')
    id_metrics = identification_metrics(runner)
    if (export_mat_dir or plot_dir) and not id_metrics:
        print_log('no IdentificationMetric in the test evaluator: no .mat files or CMC/PR plots to write',
                  logger='current')
        return
    for i, metric in enumerate(id_metrics):
        suffix = '' if len(id_metrics) == 1 else f'_{i}'
        if export_mat_dir:
            feats = metric.last_features
            files = export_mat(export_mat_dir if not suffix else osp.join(export_mat_dir, suffix[1:]),
                               feats['probe_feats'], feats['gallery_feats'], feats['gallery_labels'])
            print_log(f'official-format features written: {sorted(files.values())}', logger='current')
        if plot_dir and metric.last_result is not None:
            cmc = plot_cmc(metric.last_result, osp.join(plot_dir, f'cmc{suffix}.png'))
            pr = plot_pr(metric.last_result, osp.join(plot_dir, f'pr{suffix}.png'))
            print_log(f'plots written: {cmc}, {pr}', logger='current')
