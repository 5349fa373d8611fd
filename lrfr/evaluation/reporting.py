"""Reports of an evaluation: tables, CMC / PR plots (the paper's Fig. 7), .mat export, results JSON.

These helpers compose nothing: tools/test.py and tools/analysis_tools/* call them with the
result of :func:`lrfr.evaluation.functional.evaluate_identification` (e.g. the
``last_result`` of an :class:`~lrfr.evaluation.metrics.IdentificationMetric`).
"""
import datetime
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from lrfr.structures import DISTRACTOR_LABEL
from .functional import precision_recall_curve

Result = Mapping[str, Any]
Results = Union[Result, Mapping[str, Result]]


def make_table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: Optional[str] = None,
               markdown: bool = False, label_column: bool = True) -> str:
    """A text table: terminaltables ``AsciiTable`` or a GitHub Markdown table.

    Args:
        header (Sequence[str]): column names.
        rows (Sequence[Sequence]): cells (converted with ``str``).
        title (str, optional): AsciiTable title (ignored for Markdown). Defaults to None.
        markdown (bool): Markdown instead of ASCII. Defaults to False.
        label_column (bool): the first column holds names (left-aligned); the others,
            numbers, are right-aligned. Defaults to True.

    Returns:
        str: the table.
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    if markdown:
        first = ' --- ' if label_column else ' ---: '
        lines = ['| ' + ' | '.join(cells[0]) + ' |',
                 '|' + '|'.join([first] + [' ---: '] * (len(header) - 1)) + '|']
        lines += ['| ' + ' | '.join(row) + ' |' for row in cells[1:]]
        return '\n'.join(lines)
    from terminaltables import AsciiTable
    table = AsciiTable(cells, title)
    for i in range(1 if label_column else 0, len(header)):
        table.justify_columns[i] = 'right'
    return table.table


def _named(results: Results) -> Dict[str, Result]:
    """Accept one result (has a 'cmc' key) or a mapping name -> result."""
    if 'cmc' in results:
        return {'': results}  # type: ignore[dict-item]
    if not results or not all(isinstance(r, Mapping) and 'cmc' in r for r in results.values()):
        raise TypeError('expected an evaluate_identification() result or a mapping '
                        'name -> result (each with a "cmc" entry)')
    return dict(results)  # type: ignore[arg-type]


def _figure():
    import matplotlib
    matplotlib.use('Agg')  # files only: never needs a display
    import matplotlib.pyplot as plt
    return plt, plt.subplots(figsize=(5.5, 4.2))


def plot_cmc(results: Results, path: str, max_rank: int = 50, title: str = 'CMC') -> str:
    """Plot CMC curves (identification rate in % vs rank), like the paper's Fig. 7.

    Args:
        results (dict): one :func:`evaluate_identification` result, or a mapping
            method name -> result to compare methods on one plot.
        path (str): output image file (PNG by extension).
        max_rank (int): last rank shown. Defaults to 50 (the paper's Rank-50); a smaller
            gallery ends its curve at its size.
        title (str): plot title. Defaults to ``'CMC'``.

    Returns:
        str: ``path``.
    """
    named = _named(results)
    plt, (fig, ax) = _figure()
    for name, res in named.items():
        # ranks past the gallery size do not exist (official mode's CMC runs on to 1,000)
        cmc = np.asarray(res['cmc'], dtype=np.float64)[:min(max_rank, int(res['num_gallery']))] * 100
        rank = np.arange(1, cmc.size + 1)
        label = name or None
        if name == '':
            label = f"Rank-1 {cmc[0]:.1f}%, mAP {100 * res['mAP']:.1f}%"
        ax.plot(rank, cmc, label=label)
    ax.set_xlabel('Rank')
    ax.set_ylabel('Identification rate (%)')
    ax.set_xlim(1, max(2, min(max_rank, max(int(r['num_gallery']) for r in named.values()))))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc='lower right')
    return _save(plt, fig, path)


def plot_pr(results: Results, path: str, max_rank: Optional[int] = None,
            title: str = 'Precision-Recall') -> str:
    """Plot mean precision vs mean recall over the ranked gallery (see
    :func:`precision_recall_curve`).

    Args:
        results (dict): one result or a mapping method name -> result.
        path (str): output image file.
        max_rank (int, optional): last rank of the curves. Defaults to None (each result's
            ``max_rank``: 1,000 in official mode, the gallery size in exact mode). A curve never
            runs past its gallery size: beyond it no gallery item is left to rank, and the official
            cut-off would only add a vertical drop of precision.
        title (str): plot title. Defaults to ``'Precision-Recall'``.

    Returns:
        str: ``path``.
    """
    named = _named(results)
    plt, (fig, ax) = _figure()
    for name, res in named.items():
        last = int(res['max_rank'] if max_rank is None else max_rank)
        curve = precision_recall_curve(res, min(last, int(res['num_gallery'])))
        label = name or f"mAP {100 * res['mAP']:.1f}%"
        ax.plot(curve['recall'] * 100, curve['precision'] * 100, label=label)
    ax.set_xlabel('Recall (%)')
    ax.set_ylabel('Precision (%)')
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc='upper right')
    return _save(plt, fig, path)


def _save(plt, fig, path: str) -> str:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def export_mat(out_dir: str, probe_feats: Any, gallery_feats: Any, gallery_labels: Any,
               dtype: Optional[str] = None) -> Dict[str, str]:
    """Write features for the official MATLAB ``test_face_identification.m``.

    ``probe.mat`` holds ``probe_feature_map``, ``gallery.mat`` ``gallery_feature_map`` (the
    labelled gallery images) and ``distractor.mat`` ``distractor_feature_map`` (label
    ``DISTRACTOR_LABEL``); one row per image, in the order given, which must be the
    order of the protocol files (``probe_img_ID_pairs.mat``,
    ``gallery_match_img_ID_pairs.mat``), as lrfr's TinyFace test set yields them.

    Args:
        out_dir (str): output folder (created).
        probe_feats (array): ``(P, D)`` probe features.
        gallery_feats (array): ``(G, D)`` gallery features (matches and distractors).
        gallery_labels (array): ``(G,)`` labels; ``DISTRACTOR_LABEL`` marks distractors.
        dtype (str, optional): ``'float32'`` (MATLAB single) or ``'float64'`` (double).
            Defaults to None (keep the features' dtype).

    Returns:
        dict: ``{'probe': path, 'gallery': path, 'distractor': path}``.
    """
    from scipy.io import savemat

    def to_numpy(x: Any) -> np.ndarray:
        arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return arr.astype(dtype) if dtype is not None else arr

    probe = to_numpy(probe_feats)
    gallery = to_numpy(gallery_feats)
    labels = np.asarray(gallery_labels.cpu() if isinstance(gallery_labels, torch.Tensor)
                        else gallery_labels).reshape(-1)
    if probe.ndim != 2 or gallery.ndim != 2 or probe.shape[1] != gallery.shape[1]:
        raise ValueError(f'export_mat: expected (P, D) and (G, D) features, got {probe.shape} '
                         f'and {gallery.shape}')
    if labels.shape[0] != gallery.shape[0]:
        raise ValueError(f'export_mat: {labels.shape[0]} gallery labels for {gallery.shape[0]} rows')
    is_distractor = labels == DISTRACTOR_LABEL
    if is_distractor.any() and not is_distractor[np.argmax(is_distractor):].all():
        # The MATLAB script concatenates [gallery; distractor]: another order would change
        # how ties break there.
        import warnings
        warnings.warn('export_mat: distractors are interleaved with gallery matches; '
                      'the official script will see them after all matches', stacklevel=2)
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, key, arr in (('probe', 'probe_feature_map', probe),
                           ('gallery', 'gallery_feature_map', gallery[~is_distractor]),
                           ('distractor', 'distractor_feature_map', gallery[is_distractor])):
        paths[name] = osp.join(out_dir, f'{name}.mat')
        savemat(paths[name], {key: arr}, do_compression=False)
    return paths


def _plain(value: Any) -> Any:
    """JSON-safe copy of metric values (numpy/torch scalars and arrays to Python)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write_results_json(path: str, metrics: Mapping[str, Any], config: str,
                       checkpoint: Optional[str], **extra: Any) -> str:
    """Write ``{"metrics": ..., "config": ..., "checkpoint": ..., "date": ..., **extra}`` (tools/test.py ``--out``).

    Args:
        path (str): output file.
        metrics (Mapping): metric name -> value (e.g. ``{'tinyface/rank1': 32.1, ...}``).
        config (str): config file path.
        checkpoint (str, optional): checkpoint path.
        **extra: more JSON-able entries; tools/test.py adds ``seed``, ``benchmark`` (the config's
            ``benchmark`` dict) and ``per_probe`` (metric prefix -> :func:`write_per_probe_json` record).

    Returns:
        str: ``path``.
    """
    record = dict(metrics=_plain(dict(metrics)), config=str(config),
                  checkpoint=None if checkpoint is None else str(checkpoint),
                  date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                  **{key: _plain(value) for key, value in extra.items()})
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(record, f, indent=2)
    return path


PER_PROBE_KEYS = ('probe_index', 'probe_file', 'label', 'ap', 'first_match_rank', 'valid')


def write_per_probe_json(path: str, result: Result, probe_index: Sequence[Any],
                         probe_label: Sequence[int], probe_file: Optional[Sequence[Optional[str]]] = None) -> str:
    """Write each probe's outcome of an :func:`evaluate_identification` result as JSON.

    The record holds, one entry per probe in the order evaluated: ``probe_index`` (dataset index),
    ``probe_file`` (image path, None when unknown), ``label``, ``ap`` (fraction in [0, 1]),
    ``first_match_rank`` (1-based, 0 = no match found) and ``valid`` (counted in the means).
    ``mean(ap[valid])`` is the result's mAP and ``mean(first_match_rank[valid] == 1)`` its Rank-1:
    the paired bootstrap of the benchmark table resamples these.

    Args:
        path (str): output file.
        result (Mapping): an :func:`evaluate_identification` result.
        probe_index (Sequence): the probes' dataset indices.
        probe_label (Sequence[int]): the probes' identities.
        probe_file (Sequence[str], optional): the probes' image paths. Defaults to None.

    Returns:
        str: ``path``.
    """
    num = int(result['num_probes'])
    files = list(probe_file) if probe_file is not None else [None] * num
    if not len(probe_index) == len(probe_label) == len(files) == num:
        raise ValueError(f'write_per_probe_json: {len(probe_index)} indices, {len(probe_label)} labels and '
                         f'{len(files)} files for {num} probes')
    record = dict(probe_index=list(probe_index), probe_file=files, label=list(probe_label),
                  ap=result['ap'], first_match_rank=result['first_match_rank'], valid=result['valid'],
                  mAP=result['mAP'], ap_mode=result['ap_mode'])
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(_plain(record), f)
    return path


def load_results_json(path: str) -> Dict[str, Any]:
    """Read a file written by :func:`write_results_json`, checking its shape."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f'results file not found: {path}') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not a JSON file ({e})') from None
    if not isinstance(record, dict) or not isinstance(record.get('metrics'), dict):
        raise ValueError(f'{path}: expected {{"metrics": {{...}}, "config": ..., ...}} as written '
                         'by tools/test.py --out')
    return record


def find_metric(metrics: Mapping[str, Any], name: str, prefix: Optional[str] = None,
                source: str = 'metrics') -> float:
    """Look up ``name`` (e.g. ``'rank1'``) among metric keys such as ``'tinyface/rank1'``.

    Args:
        metrics (Mapping): metric name -> value.
        name (str): metric name without prefix.
        prefix (str, optional): the metric prefix to use when several match. Defaults to None.
        source (str): where the metrics came from, for error messages.

    Returns:
        float: the value.
    """
    if prefix is not None:
        keys: List[str] = [f'{prefix}/{name}'] if f'{prefix}/{name}' in metrics else []
    else:
        keys = [k for k in metrics if k == name or k.endswith('/' + name)]
    if len(keys) != 1:
        found = 'no key' if not keys else f'several keys {keys} (pass a prefix)'
        raise KeyError(f'{source}: {found} for metric {name!r}; available: {sorted(metrics)}')
    return float(metrics[keys[0]])
