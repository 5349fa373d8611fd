"""1:N identification metric (CMC / mAP) on the TinyFace protocol, as an mmengine metric plugin."""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from lrfr.registry import METRICS
from lrfr.structures import SUBSET_GALLERY, SUBSET_PROBE
from ..functional.identification import check_identification_options, evaluate_identification
from ..reporting import export_mat, make_table, plot_cmc, plot_pr, write_per_probe_json
from ._embeddings import dataset_order, sample_embedding, sample_label, stack


@METRICS.register_module()
class IdentificationMetric(BaseMetric):
    """CMC at given ranks and mAP of probes against gallery matches + distractors.

    Follows the TinyFace evaluation of Cheng, Zhu & Gong (ACCV 2018): every probe is
    ranked against the whole gallery by Euclidean distance; see
    :func:`lrfr.evaluation.functional.evaluate_identification` for the exact
    definitions, the tie rule and the official 1,000-rank cut-off.

    Each data sample must carry ``embedding`` (and ``embedding_flip`` when
    ``flip_fusion``), ``gt_label`` (``DISTRACTOR_LABEL`` for distractors) and metainfo
    ``subset`` (``'probe'`` or ``'gallery'``) and ``sample_idx`` (dataset index: the
    gallery's order breaks ties, so results are put back in dataset order). In
    distributed evaluation mmengine gathers the per-sample features once and only
    rank 0 computes; no rank builds a distance matrix.

    After :meth:`compute_metrics`, ``self.last_result`` holds the full result (CMC
    curve, per-probe AP, match ranks). The metric itself writes what its options ask
    for, on the rank that computes (``tools/test.py`` only sets the options): the
    official ``.mat`` features (``export_mat_dir``), CMC / PR plots (``plot_dir``) and
    the per-probe AP and first-match rank (``per_probe_file``).

    Example::

        val_evaluator = dict(type='IdentificationMetric', flip_fusion=True,
                             l2_normalize=False, distance='euclidean', ap_mode='official')

    Args:
        l2_normalize (bool): L2-normalise embeddings (after flip fusion). Defaults to False
            (the official protocol matches raw features).
        flip_fusion (bool): average ``embedding`` and ``embedding_flip``. Defaults to False.
        distance (str): ``'euclidean'`` or ``'cosine'``. Defaults to ``'euclidean'``.
        ap_mode (str): ``'official'`` (TinyFace script) or ``'exact'``. Defaults to
            ``'official'``.
        ranks (Sequence[int]): reported CMC ranks. Defaults to ``(1, 5, 10, 20, 50)``.
        chunk_size (int, optional): probes per block. Defaults to None (device default).
        gallery_chunk_size (int, optional): gallery columns per block. Defaults to None.
        no_match (str): ``'zero'`` or ``'exclude'`` for probes without a true match.
            Defaults to ``'zero'``.
        device (str, optional): where to compute (e.g. ``'cuda'``). Defaults to None (CPU,
            where the gathered features are).
        export_mat_dir (str, optional): write ``probe.mat``, ``gallery.mat`` and
            ``distractor.mat`` there (:func:`~lrfr.evaluation.reporting.export_mat`).
            Defaults to None.
        plot_dir (str, optional): write ``cmc.png`` and ``pr.png`` there. Defaults to None.
        plot_title (str, optional): what the plots show, added to their titles (``tools/test.py``
            names the config and checkpoint). Defaults to None.
        per_probe_file (str, optional): write each probe's dataset index, file, label,
            AP and first-match rank as JSON
            (:func:`~lrfr.evaluation.reporting.write_per_probe_json`). Defaults to None.
        collect_device (str): ``'cpu'`` or ``'gpu'`` for gathering. Defaults to ``'cpu'``.
        prefix (str, optional): metric key prefix. Defaults to None (``'tinyface'``).
        collect_dir (str, optional): folder for CPU gathering. Defaults to None.
    """

    default_prefix = 'tinyface'

    def __init__(self,
                 l2_normalize: bool = False,
                 flip_fusion: bool = False,
                 distance: str = 'euclidean',
                 ap_mode: str = 'official',
                 ranks: Sequence[int] = (1, 5, 10, 20, 50),
                 chunk_size: Optional[int] = None,
                 gallery_chunk_size: Optional[int] = None,
                 no_match: str = 'zero',
                 device: Optional[str] = None,
                 export_mat_dir: Optional[str] = None,
                 plot_dir: Optional[str] = None,
                 plot_title: Optional[str] = None,
                 per_probe_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        ranks = check_identification_options(distance, ap_mode, no_match, ranks,
                                             owner=f'{type(self).__name__}: ')
        self.l2_normalize = l2_normalize
        self.flip_fusion = flip_fusion
        self.distance = distance
        self.ap_mode = ap_mode
        self.ranks = tuple(int(k) for k in ranks)
        self.chunk_size = chunk_size
        self.gallery_chunk_size = gallery_chunk_size
        self.no_match = no_match
        self.device = device
        self.export_mat_dir = export_mat_dir
        self.plot_dir = plot_dir
        self.plot_title = plot_title
        self.per_probe_file = per_probe_file
        self.last_result: Optional[Dict[str, Any]] = None

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep, per sample, its fused feature, label, subset and dataset index (one entry
        per sample, as ``collect_results`` expects)."""
        name = type(self).__name__
        for sample in data_samples:
            self.results.append(dict(
                feat=sample_embedding(sample, self.flip_fusion, self.l2_normalize, name),
                label=sample_label(sample, name),
                subset=sample.get('subset'),
                sample_idx=sample.get('sample_idx'),
                img_path=sample.get('img_path')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Split probes / gallery in dataset order, evaluate, print the table.

        Returns:
            dict: ``rank{k}`` and ``mAP`` in percent.
        """
        name = type(self).__name__
        results = [results[i] for i in dataset_order([r['sample_idx'] for r in results], name)]
        subsets = np.array([r['subset'] for r in results], dtype=object)
        unknown = sorted({str(s) for s in subsets} - {SUBSET_PROBE, SUBSET_GALLERY})
        if unknown:
            raise ValueError(f'{name}: every sample needs metainfo subset={SUBSET_PROBE!r} or '
                             f'{SUBSET_GALLERY!r}; got {unknown}')
        is_probe = subsets == SUBSET_PROBE
        if is_probe.all() or not is_probe.any():
            raise ValueError(f'{name}: need both probe and gallery samples, got '
                             f'{int(is_probe.sum())} probes and {int((~is_probe).sum())} gallery')
        probe = [r for r, p in zip(results, is_probe) if p]
        gallery = [r for r, p in zip(results, is_probe) if not p]
        probe_feats = stack([r['feat'] for r in probe], 'probe', name)
        gallery_feats = stack([r['feat'] for r in gallery], 'gallery', name)
        probe_labels = np.array([r['label'] for r in probe], dtype=np.int64)
        gallery_labels = np.array([r['label'] for r in gallery], dtype=np.int64)

        device = torch.device(self.device) if self.device else None
        result = evaluate_identification(
            probe_feats, probe_labels, gallery_feats, gallery_labels, distance=self.distance,
            ap_mode=self.ap_mode, ranks=self.ranks, chunk_size=self.chunk_size,
            gallery_chunk_size=self.gallery_chunk_size, no_match=self.no_match, device=device)
        self.last_result = result
        self._write_outputs(result, probe, probe_feats, gallery_feats, gallery_labels)

        metrics = {f'rank{k}': 100.0 * result[f'rank{k}'] for k in self.ranks}
        metrics['mAP'] = 100.0 * result['mAP']
        title = (f' {self.prefix or "identification"}: {len(probe)} probes vs {len(gallery)} '
                 f'gallery ({self.distance}, {self.ap_mode} AP) ')
        header = [f'Rank-{k} (%)' for k in self.ranks] + ['mAP (%)']
        table = make_table(header, [[f'{v:.2f}' for v in metrics.values()]], title=title,
                           label_column=False)
        print_log('\n' + table, logger='current')
        return metrics

    def _write_outputs(self, result: Dict[str, Any], probe: List[dict], probe_feats: Any,
                       gallery_feats: Any, gallery_labels: np.ndarray) -> None:
        """Write the files the options ask for (features in dataset order, as the protocol files)."""
        written = []
        if self.export_mat_dir:
            written += sorted(export_mat(self.export_mat_dir, probe_feats, gallery_feats,
                                         gallery_labels).values())
        if self.plot_dir:
            suffix = f'\n{self.plot_title}' if self.plot_title else ''
            written += [plot_cmc(result, osp.join(self.plot_dir, 'cmc.png'), title='CMC' + suffix),
                        plot_pr(result, osp.join(self.plot_dir, 'pr.png'), title='Precision-Recall' + suffix)]
        if self.per_probe_file:
            written.append(write_per_probe_json(
                self.per_probe_file, result, [r['sample_idx'] for r in probe],
                [r['label'] for r in probe], [r.get('img_path') for r in probe]))
        if written:
            print_log(f'{type(self).__name__}: wrote {", ".join(written)}', logger='current')
