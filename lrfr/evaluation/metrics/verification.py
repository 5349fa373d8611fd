"""1:1 verification metric on image pairs (LFW-style), as an mmengine metric plugin."""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from lrfr.registry import METRICS
from ..functional.verification import DISTANCES, evaluate_verification
from ..reporting import make_table
from ._embeddings import sample_embedding, sample_label, stack


@METRICS.register_module()
class VerificationMetric(BaseMetric):
    """ROC, TAR at fixed FARs and 10-fold best-threshold accuracy on image pairs.

    How pairs are given: every image of the evaluation dataset is one side of one
    pair, with metainfo ``pair_id`` (any int, the same for both images; pairs are
    ordered by it for the folds, so number them in protocol order) and ``pair_side``
    (0 or 1). Whether a pair is genuine comes from metainfo ``pair_label``
    (1/True = same person) when present, else from ``gt_label`` equality. An image
    used in several pairs appears once per pair (the dataset repeats it). See
    :mod:`lrfr.evaluation.functional.verification` for the definitions.

    Example::

        val_evaluator = dict(type='VerificationMetric', distance='cosine', flip_fusion=True)

    Args:
        distance (str): ``'cosine'`` or ``'euclidean'``. Defaults to ``'cosine'``.
        far_targets (Sequence[float]): FARs for TAR@FAR. Defaults to ``(1e-4, 1e-3, 1e-2)``.
        n_folds (int): folds of the accuracy cross-validation. Defaults to 10.
        l2_normalize (bool): L2-normalise embeddings (after flip fusion). Defaults to False.
        flip_fusion (bool): average ``embedding`` and ``embedding_flip``. Defaults to False.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): metric key prefix. Defaults to None (``'verification'``).
        collect_dir (str, optional): folder for CPU gathering. Defaults to None.
    """

    default_prefix = 'verification'

    def __init__(self,
                 distance: str = 'cosine',
                 far_targets: Sequence[float] = (1e-4, 1e-3, 1e-2),
                 n_folds: int = 10,
                 l2_normalize: bool = False,
                 flip_fusion: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if distance not in DISTANCES:
            raise ValueError(f'VerificationMetric: distance must be one of {DISTANCES}, '
                             f'got {distance!r}')
        if any(not 0 < f <= 1 for f in far_targets):
            raise ValueError(f'VerificationMetric: far_targets must be in (0, 1], got {far_targets}')
        self.distance = distance
        self.far_targets = tuple(float(f) for f in far_targets)
        self.n_folds = n_folds
        self.l2_normalize = l2_normalize
        self.flip_fusion = flip_fusion
        self.last_result: Optional[Dict[str, Any]] = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each image's feature with its pair id, side and genuine flag."""
        name = type(self).__name__
        for sample in data_samples:
            for key in ('pair_id', 'pair_side'):
                if key not in sample:
                    raise KeyError(f'{name}: data samples need metainfo `pair_id` and `pair_side`; '
                                   f'missing {key!r} (fields: {sorted(sample)})')
            same = sample.get('pair_label')
            self.results.append(dict(
                feat=sample_embedding(sample, self.flip_fusion, self.l2_normalize, name),
                pair_id=int(sample['pair_id']), side=int(sample['pair_side']),
                same=None if same is None else bool(torch.as_tensor(same).item()),
                label=sample_label(sample, name) if same is None else None))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Pair up the images, then accuracy, TAR@FAR and AUC in percent."""
        name = type(self).__name__
        pairs: Dict[int, Dict[int, dict]] = {}
        for r in results:
            if r['side'] not in (0, 1):
                raise ValueError(f'{name}: pair_side must be 0 or 1, got {r["side"]} '
                                 f'(pair {r["pair_id"]})')
            sides = pairs.setdefault(r['pair_id'], {})
            if r['side'] in sides:
                raise ValueError(f'{name}: pair {r["pair_id"]} has two images on side {r["side"]}')
            sides[r['side']] = r
        incomplete = [pid for pid, sides in pairs.items() if len(sides) != 2]
        if incomplete:
            raise ValueError(f'{name}: {len(incomplete)} pair(s) lack an image, e.g. pair_id '
                             f'{incomplete[:5]}')
        ids = sorted(pairs)
        firsts = [pairs[i][0] for i in ids]
        seconds = [pairs[i][1] for i in ids]
        is_same = []
        for a, b in zip(firsts, seconds):
            if a['same'] is not None or b['same'] is not None:
                if a['same'] is None or b['same'] is None or a['same'] != b['same']:
                    raise ValueError(f'{name}: pair {ids[len(is_same)]} has inconsistent pair_label')
                is_same.append(a['same'])
            else:
                is_same.append(a['label'] == b['label'])
        result = evaluate_verification(
            stack([r['feat'] for r in firsts], 'first-side', name),
            stack([r['feat'] for r in seconds], 'second-side', name),
            np.asarray(is_same), distance=self.distance, far_targets=self.far_targets,
            n_folds=self.n_folds)
        self.last_result = result

        metrics = dict(accuracy=100 * result['accuracy'],
                       accuracy_std=100 * result['accuracy_std'])
        for far, tar in result['tar_at_far'].items():
            metrics[f'TAR@FAR={far:g}'] = 100 * tar
        metrics['AUC'] = 100 * result['auc']
        header = ['Accuracy (%)'] + [f'TAR@FAR={f:g} (%)' for f in result['tar_at_far']] + ['AUC (%)']
        row = [f"{metrics['accuracy']:.2f} +- {metrics['accuracy_std']:.2f}"] + \
            [f'{100 * t:.2f}' for t in result['tar_at_far'].values()] + [f"{metrics['AUC']:.2f}"]
        table = make_table(header, [row], title=f' {self.prefix}: {len(ids)} pairs ',
                           label_column=False)
        print_log('\n' + table, logger='current')
        return metrics
