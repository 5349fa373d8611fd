"""Failure grids: for each failed probe (and a sample of correct ones), the probe, its top-k gallery faces and
its true match with their distances and file names, one PNG per probe, so a user sees what the model confuses.

:class:`FailureGridMetric` sits next to the ``IdentificationMetric`` in the test evaluator (with the same
``flip_fusion`` / ``l2_normalize`` / ``distance``, so it ranks the gallery as the benchmark does) and draws
instead of scoring; :func:`add_failure_grids` puts it there (``tools/test.py --show-dir DIR``).
"""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from lrfr.registry import METRICS
from lrfr.structures import DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE

#: Size of one grid cell in inches and the PNG resolution: a grid of ``c`` columns is
#: ``c * CELL_W * DPI`` x ``CELL_H * DPI`` pixels.
CELL_W, CELL_H, DPI = 1.8, 2.2, 100


def _read_rgb(path: Optional[str]) -> np.ndarray:
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR) if path else None
    if img is None:  # a file gone since the test: a grey cell rather than no grid
        return np.full((8, 8, 3), 128, np.uint8)
    return img[..., ::-1]


def draw_probe_grid(out_file: str, probe: Dict[str, Any], matches: Sequence[Dict[str, Any]],
                    true_match: Optional[Dict[str, Any]]) -> None:
    """Write one row of faces: the probe, its ranked ``matches``, then its closest ``true_match``.

    Each item is a dict with ``file`` and ``label`` (matches and true match also ``distance`` and ``rank``);
    titles give the file name, label and distance, green for the probe's identity and red otherwise. The PNG
    is ``(len(matches) + 2) * CELL_W * DPI`` pixels wide and ``CELL_H * DPI`` high.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = len(matches) + 2
    fig, axes = plt.subplots(1, columns, figsize=(columns * CELL_W, CELL_H), dpi=DPI, squeeze=False)
    cells = [('probe', probe, 'black')]
    cells += [(f'rank {m["rank"]}', m, 'green' if m['label'] == probe['label'] else 'red') for m in matches]
    cells.append(('true match', true_match, 'green'))
    for ax, (head, item, colour) in zip(axes[0], cells):
        ax.axis('off')
        if item is None:
            ax.set_title(f'{head}\n(none in gallery)', fontsize=7)
            continue
        ax.imshow(_read_rgb(item.get('file')), interpolation='nearest')
        who = 'distractor' if item['label'] == DISTRACTOR_LABEL else f'id {item["label"]}'
        lines = [head, osp.basename(str(item.get('file'))), who]
        if 'distance' in item:
            lines[-1] += f'  d={item["distance"]:.3f}'
            if head == 'true match':
                lines[0] += f' (rank {item["rank"]})'
        ax.set_title('\n'.join(lines), fontsize=7, color=colour)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.78, wspace=0.1)
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=DPI)
    plt.close(fig)


@METRICS.register_module()
class FailureGridMetric(BaseMetric):
    """Draw :func:`draw_probe_grid` PNGs of the test's failures under ``out_dir/failures`` and of a sample
    of correctly identified probes under ``out_dir/correct``; reports no numbers.

    A probe fails when its rank-1 gallery face has another identity. Grids are drawn in dataset order; the
    correct sample is a seeded random choice.

    Args:
        out_dir (str): folder for the PNGs.
        top_k (int): gallery faces per grid. Defaults to 5.
        max_failures (int, optional): draw at most this many failures. Defaults to 50.
        num_correct (int): correct probes to draw. Defaults to 5.
        flip_fusion, l2_normalize, distance: as the ``IdentificationMetric`` of the same test.
        seed (int): seed of the correct sample. Defaults to 0.
    """

    default_prefix = 'show'

    def __init__(self, out_dir: str, top_k: int = 5, max_failures: Optional[int] = 50, num_correct: int = 5,
                 flip_fusion: bool = False, l2_normalize: bool = False, distance: str = 'euclidean',
                 seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if top_k < 1:
            raise ValueError(f'FailureGridMetric: top_k must be >= 1, got {top_k}')
        if distance not in ('euclidean', 'cosine'):
            raise ValueError(f"FailureGridMetric: distance must be 'euclidean' or 'cosine', got {distance!r}")
        self.out_dir, self.top_k, self.max_failures = out_dir, int(top_k), max_failures
        self.num_correct, self.seed = int(num_correct), seed
        self.flip_fusion, self.l2_normalize, self.distance = flip_fusion, l2_normalize, distance

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        from lrfr.evaluation.metrics._embeddings import sample_embedding, sample_label
        name = type(self).__name__
        for sample in data_samples:
            self.results.append(dict(feat=sample_embedding(sample, self.flip_fusion, self.l2_normalize, name),
                                     label=sample_label(sample, name), subset=sample.get('subset'),
                                     sample_idx=sample.get('sample_idx'), img_path=sample.get('img_path')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        from lrfr.apis.index import exact_search
        from lrfr.evaluation.metrics._embeddings import dataset_order
        name = type(self).__name__
        results = [results[i] for i in dataset_order([r['sample_idx'] for r in results], name)]
        probes = [r for r in results if r['subset'] == SUBSET_PROBE]
        gallery = [r for r in results if r['subset'] == SUBSET_GALLERY]
        if not probes or not gallery:
            raise ValueError(f'{name}: need probe and gallery samples, got {len(probes)} and {len(gallery)}')
        pf, gf = torch.stack([r['feat'] for r in probes]), torch.stack([r['feat'] for r in gallery])
        if self.distance == 'cosine':
            pf, gf = torch.nn.functional.normalize(pf, dim=1), torch.nn.functional.normalize(gf, dim=1)
        _, top1 = exact_search(gf, pf, 1, self.distance)
        gallery_labels = np.array([r['label'] for r in gallery])
        failures, correct = [], []
        for p, probe in enumerate(probes):
            (failures if gallery_labels[top1[p, 0]] != probe['label'] else correct).append(p)
        rng = np.random.default_rng(self.seed)
        sample = sorted(rng.choice(correct, min(self.num_correct, len(correct)), replace=False).tolist()) \
            if correct else []
        chosen = [('failures', p) for p in failures[:self.max_failures]] + [('correct', p) for p in sample]
        for folder, p in chosen:
            probe = probes[p]
            # the full ranking of one probe (one gallery-sized vector) gives the true match's rank
            dist, order = (a[0] for a in exact_search(gf, pf[p:p + 1], len(gallery), self.distance))
            item = lambda r: dict(file=gallery[order[r]]['img_path'],  # noqa: E731
                                  label=gallery[order[r]]['label'], distance=float(dist[r]), rank=r + 1)
            hits = np.nonzero(gallery_labels[order] == probe['label'])[0] \
                if probe['label'] != DISTRACTOR_LABEL else []
            stem = osp.splitext(osp.basename(str(probe['img_path'])))[0]
            draw_probe_grid(osp.join(self.out_dir, folder, f'{p:05d}_{stem}.png'),
                            dict(file=probe['img_path'], label=probe['label']),
                            [item(r) for r in range(min(self.top_k, len(gallery)))],
                            item(int(hits[0])) if len(hits) else None)
        print_log(f'{name}: {len(failures)} of {len(probes)} probes fail at rank 1; drew '
                  f'{min(len(failures), self.max_failures or len(failures))} failure and {len(sample)} correct '
                  f'grids in {self.out_dir}', logger='current')
        return {}


def add_failure_grids(cfg: Any, out_dir: str, **options: Any) -> bool:
    """Add a :class:`FailureGridMetric` writing to ``out_dir`` to ``cfg.test_evaluator``, with the fusion,
    normalisation and distance of its first ``IdentificationMetric``. Returns False (and adds nothing) when
    the evaluator has no identification metric."""
    evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    ident = next((e for e in evaluators if e.get('type') == 'IdentificationMetric'), None)
    if ident is None:
        return False
    grid = dict(type='FailureGridMetric', out_dir=out_dir, flip_fusion=ident.get('flip_fusion', False),
                l2_normalize=ident.get('l2_normalize', False), distance=ident.get('distance', 'euclidean'),
                **options)
    cfg.test_evaluator = [*evaluators, grid]
    return True
