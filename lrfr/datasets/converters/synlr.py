"""SynLR: a TinyFace-shaped synthetic low-resolution benchmark built from any labelled HR face set.

Cheng et al. (ACCV 2018, Sec. 5.1, Table 4) built SynLR-MF2 from 169,403 MegaFace2
images "following the data distribution of TinyFace (Table 2)": 15,975 labelled images
of 5,139 identities split like TinyFace, 153,428 distractors from the remaining
identities, all down-sampled to TinyFace's mean size 20x16. This module does the
same for any lrfr face dataset (``FaceFolderDataset``, ``FaceListDataset``,
``CelebADataset``, ...), scaled to the source:

* **Counts** (:func:`table2_counts`): for a benchmark of ``S`` images, training /
  probe / gallery-match counts are ``round(S * 7804 / 169403)``,
  ``round(S * 3728 / 169403)``, ``round(S * 4443 / 169403)`` (Python's round, half to
  even) and the distractors take the rest, so the four add up to ``S`` exactly and each
  labelled count is within 0.5 of its Table 2 share.
* **Identities** (:func:`plan_synlr`): identities with >= 2 images are shuffled
  (seeded); the first ``L`` become labelled, ``ceil(L/2)`` for training and
  ``floor(L/2)`` for test (TinyFace: 2,570 / 2,569), with
  ``L ~ labelled images / 3.11`` (TinyFace's 15,975 / 5,139 images per labelled
  identity), raised when those identities hold too few images. Every training id gets
  >= 1 image, every test id >= 1 probe and >= 1 gallery image (so every probe has a
  match), the rest dealt round-robin, alternating probe and gallery so each test id
  is split about half and half. Distractors are drawn from the images of all other
  identities (and any unlabelled source images); no distractor shares an identity
  with a labelled image.
* **Size**: ``S`` defaults to the largest size the source supports (the distractors
  need ~90.6% of the images to come from identities left unlabelled, so sets with
  many images per identity, like CelebA, yield ``S`` below their size); pass
  ``num_images`` to ask for a given ``S`` (an error says when it is not feasible).
* **Images**: ``mode='bicubic'`` down-samples to ``size`` (default 20x16, the
  paper); ``mode='realistic'`` applies the degradation chain with a generator per
  source image. Files are ``<personID>_<n>.jpg`` with ``personID = source label + 1``
  (TinyFace ids are positive), ``n`` counting each identity's images from 1;
  distractors are ``distractor_<k>.jpg``. ``manifest.csv`` maps each file to its
  source image and label; ``README.txt`` records the settings and counts.
"""
import csv
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.dataset import BaseDataset

from lrfr.registry import DATASETS
from lrfr.structures import DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE, SUBSET_TRAIN
from ..tinyface import DISTRACTOR_DIR, MATCH_DIR, PROBE_DIR, TRAIN_DIR
from ..transforms.degradations import (TINYFACE_MEAN_SIZE, DegradationParams, check_size, make_rng,
                                       random_degrade, resize)
from ..transforms.loading import save_face_image

#: Table 2 of the paper: image counts of TinyFace's parts (169,403 in all).
TABLE2_IMAGES = {SUBSET_TRAIN: 7804, SUBSET_PROBE: 3728, SUBSET_GALLERY: 4443, 'distractor': 153428}
TABLE2_TOTAL = 169403
#: Labelled images per labelled identity in TinyFace: 15,975 / 5,139.
TINYFACE_IMAGES_PER_ID = 15975 / 5139
DISTRACTOR = 'distractor'
MODES = ('bicubic', 'realistic')

# Generator keys: the plan and each image's degradation draw from independent streams.
_PLAN_KEY, _IMAGE_KEY = 0, 1


def table2_counts(total: int) -> Dict[str, int]:
    """Table 2's partition scaled to ``total`` images (labelled parts rounded, distractors the rest).

    Args:
        total (int): benchmark size ``S``.
    """
    counts = {k: int(round(total * TABLE2_IMAGES[k] / TABLE2_TOTAL))
              for k in (SUBSET_TRAIN, SUBSET_PROBE, SUBSET_GALLERY)}
    counts[DISTRACTOR] = total - sum(counts.values())
    return counts


def _deal(budget: int, capacity: List[int]) -> List[int]:
    """Split ``budget`` over slots with the given capacities: 1 each, then round-robin."""
    take = [1] * len(capacity)
    budget -= len(capacity)
    while budget > 0:
        progressed = False
        for i, cap in enumerate(capacity):
            if budget and take[i] < cap:
                take[i] += 1
                budget -= 1
                progressed = True
        if not progressed:
            raise RuntimeError('internal: budget exceeds capacity')  # excluded by the feasibility check
    return take


def _deal_test(n_probe: int, n_gallery: int, capacity: List[int]) -> List[Tuple[int, int]]:
    """Per test identity ``(probes, gallery)``: 1 + 1 each, then alternating round-robin."""
    probe, gallery = [1] * len(capacity), [1] * len(capacity)
    rem_p, rem_g = n_probe - len(capacity), n_gallery - len(capacity)
    while rem_p > 0 or rem_g > 0:
        progressed = False
        for i, cap in enumerate(capacity):
            if probe[i] + gallery[i] >= cap:
                continue
            # Give this identity whichever of its halves is smaller, if that budget remains.
            if rem_p > 0 and (probe[i] < gallery[i] or rem_g == 0):
                probe[i] += 1
                rem_p -= 1
                progressed = True
            elif rem_g > 0:
                gallery[i] += 1
                rem_g -= 1
                progressed = True
        if not progressed:
            raise RuntimeError('internal: test budget exceeds capacity')
    return list(zip(probe, gallery))


class SynLRPlan:
    """Which source images go where: ``parts[subset] = [(source_index, person_id, n), ...]``.

    ``person_id`` is ``DISTRACTOR_LABEL`` and ``n`` the running distractor number for
    distractors. ``counts`` are the Table 2 targets for ``total`` images.
    """

    def __init__(self, total: int, counts: Dict[str, int], parts: Dict[str, List[Tuple[int, int, int]]],
                 train_ids: List[int], test_ids: List[int]) -> None:
        self.total, self.counts, self.parts = total, counts, parts
        self.train_ids, self.test_ids = train_ids, test_ids

    def __repr__(self) -> str:
        sizes = {k: len(v) for k, v in self.parts.items()}
        return (f'SynLRPlan(total={self.total}, images={sizes}, train_ids={len(self.train_ids)}, '
                f'test_ids={len(self.test_ids)})')


def _group(labels: Sequence[int]) -> Tuple[Dict[int, List[int]], List[int]]:
    """Source indices per identity label, and the indices of unlabelled images."""
    by_id: Dict[int, List[int]] = {}
    unlabelled = []
    for idx, label in enumerate(labels):
        label = int(label)
        if label == DISTRACTOR_LABEL:
            unlabelled.append(idx)
        elif label < 0:
            raise ValueError(f'source image {idx} has label {label}; expected >= 0 or '
                             f'{DISTRACTOR_LABEL} (unlabelled)')
        else:
            by_id.setdefault(label, []).append(idx)
    return by_id, unlabelled


def _try_plan(total: int, cum: np.ndarray, pool_all: int,
              images_per_id: float) -> Optional[Tuple[Dict[str, int], int, int]]:
    """Table 2 targets and the number of training / test identities for ``total`` images.

    ``cum[k]`` is the number of images of the first ``k + 1`` identities in the
    shuffled order; ``pool_all`` all usable images. Returns None when the source
    cannot supply ``total`` images in Table 2's shape.
    """
    counts = table2_counts(total)
    n_train, n_probe, n_gallery = counts[SUBSET_TRAIN], counts[SUBSET_PROBE], counts[SUBSET_GALLERY]
    if min(n_train, n_probe, n_gallery) < 1:
        return None
    # ceil(L/2) training ids need >= 1 image each, floor(L/2) test ids >= 1 probe and >= 1 gallery.
    max_ids = min(2 * n_train, 2 * min(n_probe, n_gallery) + 1, len(cum))
    num_ids = min(max(2, int(round((n_train + n_probe + n_gallery) / images_per_id))), max_ids)
    if num_ids < 2:
        return None
    while num_ids <= max_ids:
        n_train_ids = (num_ids + 1) // 2
        in_train = int(cum[n_train_ids - 1])
        if in_train >= n_train and int(cum[num_ids - 1]) - in_train >= n_probe + n_gallery:
            break
        num_ids += 1  # too few images on these identities: enlist one more
    else:
        return None
    if pool_all - int(cum[num_ids - 1]) < counts[DISTRACTOR]:
        return None  # the identities left unlabelled cannot supply the distractors
    return counts, (num_ids + 1) // 2, num_ids // 2


def plan_synlr(labels: Sequence[int], seed: int = 0, num_images: Optional[int] = None,
               images_per_id: float = TINYFACE_IMAGES_PER_ID) -> SynLRPlan:
    """Choose the identities and images of a TinyFace-shaped benchmark (see the module docstring).

    Args:
        labels (Sequence[int]): identity label of each source image (``DISTRACTOR_LABEL``
            for unlabelled images, usable only as distractors).
        seed (int): seed of the identity shuffle and image choice. Defaults to 0.
        num_images (int, optional): benchmark size ``S``; None takes the largest the
            source supports. Defaults to None.
        images_per_id (float): target labelled images per labelled identity.
            Defaults to 15,975 / 5,139 (TinyFace).

    Raises:
        ValueError: the source cannot supply ``num_images`` (or any benchmark).
    """
    if images_per_id < 2:
        raise ValueError(f'images_per_id must be >= 2 (a probe and a gallery image), got {images_per_id}')
    by_id, unlabelled = _group(labels)
    rng = make_rng(seed, _PLAN_KEY)
    eligible = sorted(i for i, idx in by_id.items() if len(idx) >= 2)
    order = [eligible[k] for k in rng.permutation(len(eligible))]
    cum = np.cumsum([len(by_id[i]) for i in order], dtype=np.int64)
    pool_all = len(labels)

    def attempt(total: int):
        return _try_plan(total, cum, pool_all, images_per_id)

    if num_images is None:
        # Smallest size whose Table 2 shares give every labelled part >= 1 image (about 23).
        smallest = next(n for n in range(1, TABLE2_TOTAL)
                        if min(v for k, v in table2_counts(n).items() if k != DISTRACTOR) >= 1)
        if attempt(smallest) is None:
            raise ValueError(f'the source ({len(labels)} images, {len(eligible)} identities with >= 2 '
                             'images) is too small for a TinyFace-shaped benchmark')
        # Largest feasible size by bisection: feasibility ends once the identities left
        # unlabelled cannot supply Table 2's distractor share.
        lo, hi = smallest, len(labels)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if attempt(mid) is not None:
                lo = mid
            else:
                hi = mid - 1
        num_images = lo
    found = attempt(num_images)
    if found is None:
        raise ValueError(f'num_images={num_images} is not feasible from this source ({len(labels)} images, '
                         f'{len(eligible)} identities with >= 2 images): Table 2 needs '
                         f'{table2_counts(num_images)}; leave num_images=None for the largest feasible size')
    counts, n_train_ids, n_test_ids = found
    train_ids, test_ids = order[:n_train_ids], order[n_train_ids:n_train_ids + n_test_ids]

    parts: Dict[str, List[Tuple[int, int, int]]] = {SUBSET_TRAIN: [], SUBSET_PROBE: [],
                                                    SUBSET_GALLERY: [], DISTRACTOR: []}
    # Each identity's images in a seeded random order; the first k are used.
    shuffled = {i: [by_id[i][k] for k in rng.permutation(len(by_id[i]))] for i in train_ids + test_ids}
    for pid, k in zip(train_ids, _deal(counts[SUBSET_TRAIN], [len(by_id[i]) for i in train_ids])):
        parts[SUBSET_TRAIN] += [(idx, pid + 1, n + 1) for n, idx in enumerate(shuffled[pid][:k])]
    splits = _deal_test(counts[SUBSET_PROBE], counts[SUBSET_GALLERY], [len(by_id[i]) for i in test_ids])
    for pid, (n_p, n_g) in zip(test_ids, splits):
        chosen = shuffled[pid][:n_p + n_g]
        parts[SUBSET_PROBE] += [(idx, pid + 1, n + 1) for n, idx in enumerate(chosen[:n_p])]
        parts[SUBSET_GALLERY] += [(idx, pid + 1, n_p + n + 1) for n, idx in enumerate(chosen[n_p:])]
    labelled = set(train_ids) | set(test_ids)
    pool = np.array(sorted(unlabelled + [idx for i, idx_list in by_id.items() if i not in labelled
                                         for idx in idx_list]), dtype=np.int64)
    picks = np.sort(rng.choice(pool, size=counts[DISTRACTOR], replace=False)) if len(pool) else pool
    parts[DISTRACTOR] = [(int(idx), DISTRACTOR_LABEL, k + 1) for k, idx in enumerate(picks)]
    return SynLRPlan(num_images, counts, parts, sorted(train_ids), sorted(test_ids))


def _relpath(subset: str, person_id: int, n: int) -> str:
    """TinyFace-layout path of one output image."""
    if subset == SUBSET_TRAIN:
        return osp.join(TRAIN_DIR, str(person_id), f'{person_id}_{n}.jpg')
    if subset == DISTRACTOR:
        return osp.join(DISTRACTOR_DIR, f'distractor_{n:06d}.jpg')
    return osp.join(PROBE_DIR if subset == SUBSET_PROBE else MATCH_DIR, f'{person_id}_{n}.jpg')


def _source_dataset(source: Union[dict, BaseDataset]) -> BaseDataset:
    """Build the source dataset; a config without a pipeline gets ``[LoadFaceImage]``."""
    if isinstance(source, dict):
        cfg = dict(source)
        cfg.setdefault('pipeline', [dict(type='LoadFaceImage')])
        source = DATASETS.build(cfg)
    if not isinstance(source, BaseDataset):
        raise TypeError(f'source must be a dataset config dict or an mmengine BaseDataset, got '
                        f'{type(source).__name__}')
    source.full_init()
    return source


def build_synlr(source: Union[dict, BaseDataset],
                out_root: str,
                mode: str = 'bicubic',
                size: Sequence[int] = TINYFACE_MEAN_SIZE,
                degradation: Optional[dict] = None,
                seed: int = 0,
                num_images: Optional[int] = None,
                images_per_id: float = TINYFACE_IMAGES_PER_ID,
                jpeg_quality: int = 95,
                progress: bool = True) -> SynLRPlan:
    """Write a TinyFace-shaped LR benchmark made from ``source`` into ``out_root``.

    Each chosen image goes through the source dataset's pipeline (which must leave an
    ``HWC uint8`` BGR image in ``results['img']`` and not pack it; e.g.
    ``[LoadFaceImage]``, the default, or ``[LoadFaceImage, CropBBox]`` for CelebA in
    the wild), then is down-sampled and saved as JPEG. The result loads with
    ``TinyFaceDataset(data_root=out_root, split=...)``.

    Args:
        source (dict | BaseDataset): labelled HR face dataset or its config.
        out_root (str): output folder (must not exist or be empty).
        mode (str): 'bicubic' (fixed ``size``, the paper) or 'realistic'
            (:func:`random_degrade`). Defaults to 'bicubic'.
        size (Sequence[int]): LR ``(H, W)`` for 'bicubic'. Defaults to (20, 16).
        degradation (dict, optional): ``DegradationParams`` fields for 'realistic'. Defaults to None.
        seed (int): seed of the plan and of the realistic degradations. Defaults to 0.
        num_images (int, optional): benchmark size; None = largest feasible. Defaults to None.
        images_per_id (float): labelled images per labelled identity. Defaults to 15,975 / 5,139.
        jpeg_quality (int): storage quality of the JPEG files. Defaults to 95.
        progress (bool): show a tqdm bar. Defaults to True.

    Returns:
        SynLRPlan: what was written.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    size = check_size(size)
    params = DegradationParams(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in (degradation or {}).items()})
    if osp.isdir(out_root) and os.listdir(out_root):
        raise FileExistsError(f'build_synlr: {out_root} is not empty; expected a new or empty folder')
    dataset = _source_dataset(source)
    labels = [int(dataset.get_data_info(i)['gt_label']) for i in range(len(dataset))]
    plan = plan_synlr(labels, seed=seed, num_images=num_images, images_per_id=images_per_id)

    jobs = [(subset, *entry) for subset, entries in plan.parts.items() for entry in entries]
    for sub in (PROBE_DIR, MATCH_DIR, DISTRACTOR_DIR):
        os.makedirs(osp.join(out_root, sub), exist_ok=True)
    for pid in sorted({p for s, _, p, _ in jobs if s == SUBSET_TRAIN}):
        os.makedirs(osp.join(out_root, TRAIN_DIR, str(pid)), exist_ok=True)
    if progress:
        from tqdm import tqdm
        jobs_iter = tqdm(jobs, desc='SynLR', unit='img')
    else:
        jobs_iter = jobs
    rows = []
    for subset, idx, pid, n in jobs_iter:
        results = dataset.prepare_data(idx)  # not __getitem__: its refetch would swap in another image
        img = results.get('img') if isinstance(results, dict) else None
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
            info = dataset.get_data_info(idx)
            raise ValueError(f'{info.get("img_path")}: the source pipeline must leave an HxWx3 uint8 image '
                             'in results["img"] (use [LoadFaceImage], without PackFaceInputs)')
        if mode == 'bicubic':
            lr = resize(img, size, 'bicubic')
        else:
            lr, _ = random_degrade(img, make_rng(seed, _IMAGE_KEY, idx), params)
        rel = _relpath(subset, pid, n)
        save_face_image(osp.join(out_root, rel), lr, jpeg_quality)
        rows.append((rel, results.get('img_path', ''), labels[idx]))

    with open(osp.join(out_root, 'manifest.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['file', 'source', 'source_label'])
        writer.writerows(rows)
    with open(osp.join(out_root, 'README.txt'), 'w', encoding='utf-8') as f:
        f.write(_readme(plan, dataset, mode, size, params, seed))
    return plan


def _readme(plan: SynLRPlan, dataset: BaseDataset, mode: str, size: Tuple[int, int],
            params: DegradationParams, seed: int) -> str:
    lr = (f'bicubic down-sampling to {size[0]}x{size[1]} (H x W)' if mode == 'bicubic'
          else f'realistic degradation chain {params}')
    got = {k: len(v) for k, v in plan.parts.items()}
    return (f'SynLR benchmark (TinyFace layout), built by lrfr (lrfr/datasets/converters/synlr.py), seed {seed}.\n'
            f'Source: {dataset!r}\n'
            f'Images: {plan.total} = Table 2 of Cheng et al. (ACCV 2018) scaled from 169,403: '
            f'{got}\n'
            f'Identities: {len(plan.train_ids)} training, {len(plan.test_ids)} test (disjoint); '
            f'distractors from the other identities.\n'
            f'Low resolution: {lr}.\n'
            'File names: <personID>_<n>.jpg with personID = source label + 1; '
            'manifest.csv maps every file to its source.\n')


__all__ = ['build_synlr', 'plan_synlr', 'table2_counts', 'SynLRPlan']
