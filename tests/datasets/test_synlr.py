"""SynLR builder (lrfr/datasets/converters/synlr.py): Table 2 proportions, disjoint identities, TinyFace layout."""
import csv
import os
import os.path as osp
import runpy
import sys
from collections import Counter

import cv2
import numpy as np
import pytest

import lrfr.datasets  # noqa: F401  (registers datasets and transforms)
from lrfr.datasets.converters.synlr import TABLE2_IMAGES, TABLE2_TOTAL, build_synlr, plan_synlr, table2_counts
from lrfr.registry import DATASETS
from lrfr.structures import DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE, SUBSET_TRAIN

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def face_folder(tmp_path_factory):
    """30 identities with 6-16 small HR images each; each identity has its own mean colour."""
    root = tmp_path_factory.mktemp('hr_faces')
    rng = np.random.default_rng(0)
    for pid in range(30):
        folder = root / f'person_{pid:02d}'
        folder.mkdir()
        colour = rng.integers(0, 256, 3)
        for k in range(int(rng.integers(6, 17))):
            img = np.clip(colour + rng.normal(0, 10, (40, 32, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f'{k:03d}.png'), img)
    return str(root)


def test_table2_counts_scale_and_round():
    assert table2_counts(TABLE2_TOTAL) == TABLE2_IMAGES
    for total in (300, 1000, 12345):
        counts = table2_counts(total)
        assert sum(counts.values()) == total
        for key in (SUBSET_TRAIN, SUBSET_PROBE, SUBSET_GALLERY):
            assert abs(counts[key] - total * TABLE2_IMAGES[key] / TABLE2_TOTAL) <= 0.5


def test_plan_on_a_celeba_like_source():
    labels = np.repeat(np.arange(2000), 20)  # 20 images per identity, as CelebA
    plan = plan_synlr(labels, seed=1)
    sizes = {k: len(v) for k, v in plan.parts.items()}
    assert sizes == plan.counts == table2_counts(plan.total)
    assert plan.total < len(labels)  # the distractors' identities limit the size
    assert abs(len(plan.train_ids) - len(plan.test_ids)) <= 1
    # Labelled images per labelled identity close to TinyFace's 3.11.
    labelled = sizes[SUBSET_TRAIN] + sizes[SUBSET_PROBE] + sizes[SUBSET_GALLERY]
    assert 2.5 < labelled / (len(plan.train_ids) + len(plan.test_ids)) < 3.5
    used = [idx for part in plan.parts.values() for idx, _, _ in part]
    assert len(used) == len(set(used))  # no image used twice
    distractor_ids = {labels[idx] for idx, _, _ in plan.parts['distractor']}
    assert not distractor_ids & (set(plan.train_ids) | set(plan.test_ids))
    with pytest.raises(ValueError, match='not feasible'):
        plan_synlr(labels, num_images=len(labels))
    assert plan_synlr(labels, seed=1).parts == plan.parts
    assert plan_synlr(labels, seed=2).parts != plan.parts


def test_build_from_a_face_folder_loads_as_tinyface(face_folder, tmp_path, monkeypatch):
    out = str(tmp_path / 'synlr')
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'build_synlr.py')
    monkeypatch.setattr(sys, 'argv', [tool, 'FaceFolderDataset', out, '--ds-args', f'data_root={face_folder}'])
    runpy.run_path(tool, run_name='__main__')

    rows = list(csv.DictReader(open(osp.join(out, 'manifest.csv'))))
    total = len(rows)
    counts = table2_counts(total)
    assert total > 200  # most of the 341 source images are usable

    train = DATASETS.build(dict(type='TinyFaceDataset', data_root=out, split='train'))
    test = DATASETS.build(dict(type='TinyFaceDataset', data_root=out, split='test'))
    infos = [test.get_data_info(i) for i in range(len(test))]
    probe = [i for i in infos if i['subset'] == SUBSET_PROBE]
    gallery = [i for i in infos if i['subset'] == SUBSET_GALLERY and i['gt_label'] != DISTRACTOR_LABEL]
    distractors = [i for i in infos if i['gt_label'] == DISTRACTOR_LABEL]
    assert (len(train), len(probe), len(gallery), len(distractors)) == (
        counts[SUBSET_TRAIN], counts[SUBSET_PROBE], counts[SUBSET_GALLERY], counts['distractor'])
    # Proportions of Table 2 within rounding.
    for n, key in ((len(train), SUBSET_TRAIN), (len(probe), SUBSET_PROBE), (len(gallery), SUBSET_GALLERY)):
        assert abs(n - total * TABLE2_IMAGES[key] / TABLE2_TOTAL) <= 0.5

    # Identities: training and test disjoint; every probe identity has a gallery match.
    train_pids = {int(c) for c in train.metainfo['classes']}
    probe_pids = {i['gt_label'] for i in probe}
    assert probe_pids == {i['gt_label'] for i in gallery}
    assert not train_pids & probe_pids
    # The file's personID is the source label + 1, and the manifest says where each image came from.
    source_label = {osp.basename(r['file']): int(r['source_label']) for r in rows}
    for info in probe + gallery:
        assert source_label[osp.basename(info['img_path'])] + 1 == info['gt_label']
    distractor_sources = {int(r['source_label']) for r in rows if 'Distractor' in r['file']}
    assert not distractor_sources & {p - 1 for p in train_pids | probe_pids}
    assert len({r['source'] for r in rows}) == total  # each source image used once

    # Images: 20x16 bicubic (the paper).
    img = cv2.imread(probe[0]['img_path'])
    assert img.shape == (20, 16, 3)
    assert 'Table 2' in open(osp.join(out, 'README.txt')).read()
    with pytest.raises(FileExistsError, match='not empty'):
        build_synlr(dict(type='FaceFolderDataset', data_root=face_folder), out, progress=False)


def test_realistic_mode_and_bad_arguments(face_folder, tmp_path):
    out = str(tmp_path / 'real')
    plan = build_synlr(dict(type='FaceFolderDataset', data_root=face_folder), out, mode='realistic',
                       degradation=dict(height_range=[8, 16]), num_images=120, progress=False)
    assert plan.total == 120
    sizes = Counter(cv2.imread(osp.join(out, 'Testing_Set', 'Gallery_Distractor', n)).shape[0]
                    for n in os.listdir(osp.join(out, 'Testing_Set', 'Gallery_Distractor')))
    assert min(sizes) >= 8 and max(sizes) <= 16 and len(sizes) > 2  # varying LR heights
    with pytest.raises(ValueError, match='mode'):
        build_synlr(dict(type='FaceFolderDataset', data_root=face_folder), str(tmp_path / 'x'), mode='blur')
    with pytest.raises(ValueError, match='HxWx3 uint8'):
        build_synlr(dict(type='FaceFolderDataset', data_root=face_folder, pipeline=[]),
                    str(tmp_path / 'y'), progress=False)
    with pytest.raises(ValueError, match='too small'):
        plan_synlr([0, 0, 1, 1, 2])
