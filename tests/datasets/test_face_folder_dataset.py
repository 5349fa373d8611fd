"""FaceFolderDataset (one folder per identity) and FaceListDataset (``path label`` lines)."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from lrfr.datasets import FaceFolderDataset, FaceListDataset
from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_SYN, DISTRACTOR_LABEL, SUBSET_PROBE, SUBSET_TRAIN


def _img(path: str, value: int = 0, shape=(6, 5, 3)) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full(shape, value, np.uint8))
    return path


@pytest.fixture
def folder_tree(tmp_path):
    root = tmp_path / 'faces'
    _img(str(root / 'bob' / '2.jpg'), 20)
    _img(str(root / 'bob' / '1.png'), 10)
    _img(str(root / 'alice' / 'x.jpg'), 30)
    (root / 'alice' / 'notes.txt').write_text('not an image')
    _img(str(root / 'carol' / 'c.bmp'), 40)
    return str(root)


def test_folder_labels_follow_sorted_folder_names(folder_tree):
    ds = DATASETS.build(dict(type='FaceFolderDataset', data_root=folder_tree))
    paths = [osp.relpath(ds.get_data_info(i)['img_path'], folder_tree) for i in range(len(ds))]
    assert paths == ['alice/x.jpg', 'bob/1.png', 'bob/2.jpg', 'carol/c.bmp']
    assert ds.get_gt_labels().tolist() == [0, 1, 1, 2]
    assert ds.metainfo['classes'] == ('alice', 'bob', 'carol')
    assert ds.get_cat_ids(2) == [1]
    assert ds.get_data_info(0)['subset'] == SUBSET_TRAIN


def test_integer_folder_names_sort_numerically(tmp_path):
    for name in ('10', '2', '1'):
        _img(str(tmp_path / 'ids' / name / 'a.jpg'))
    ds = FaceFolderDataset(str(tmp_path / 'ids'))
    assert ds.metainfo['classes'] == ('1', '2', '10')
    assert [osp.basename(osp.dirname(ds.get_data_info(i)['img_path'])) for i in range(3)] == \
        ['1', '2', '10']


def test_folder_through_pipeline(folder_tree):
    ds = FaceFolderDataset(folder_tree, branch=BRANCH_SYN,
                           pipeline=[dict(type='LoadFaceImage'), dict(type='PackFaceInputs')])
    out = ds[1]
    assert isinstance(out['inputs'], torch.Tensor) and out['inputs'].shape == (3, 6, 5)
    assert int(out['inputs'][0, 0, 0]) == 10  # bob/1.png
    sample = out['data_samples']
    assert sample.gt_label.tolist() == [1] and sample.branch == BRANCH_SYN


def test_folder_bad_input(folder_tree, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        FaceFolderDataset(str(tmp_path / 'nowhere'))
    os.makedirs(osp.join(folder_tree, 'dave'))
    with pytest.raises(ValueError, match=r'faces/dave: identity folder holds no image'):
        FaceFolderDataset(folder_tree)
    ds = FaceFolderDataset(folder_tree, skip_bad=True)
    assert ds.num_skipped == 1 and ds.metainfo['classes'] == ('alice', 'bob', 'carol')
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no samples found'):
        FaceFolderDataset(str(empty))
    with pytest.raises(ValueError, match='subset'):
        FaceFolderDataset(folder_tree, subset='query')


def _list(tmp_path, lines) -> str:
    path = tmp_path / 'list.txt'
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


def test_list_file(folder_tree, tmp_path):
    ann = _list(tmp_path, ['# path label', 'bob/2.jpg 7', '', 'alice/x.jpg 3',
                           'carol/c.bmp -100'])
    ds = FaceListDataset(ann_file=ann, data_root=folder_tree, subset=SUBSET_PROBE)
    assert ds.get_gt_labels().tolist() == [7, 3, DISTRACTOR_LABEL]  # kept as written
    assert ds.get_data_info(0)['img_path'] == osp.join(folder_tree, 'bob/2.jpg')
    assert ds.metainfo['classes'] == ('3', '7') and ds.get_data_info(0)['subset'] == SUBSET_PROBE
    remapped = FaceListDataset(ann_file=ann, data_root=folder_tree, remap_labels=True)
    assert remapped.get_gt_labels().tolist() == [1, 0, DISTRACTOR_LABEL]
    # a relative ann_file is taken from data_root; paths with spaces are fine
    _img(osp.join(folder_tree, 'eve smith', 'a b.jpg'))
    with open(osp.join(folder_tree, 'rel.txt'), 'w') as f:
        f.write('eve smith/a b.jpg 0\n')
    assert len(FaceListDataset(ann_file='rel.txt', data_root=folder_tree)) == 1


def test_list_file_bad_lines(folder_tree, tmp_path):
    with pytest.raises(FileNotFoundError, match='list file not found'):
        FaceListDataset(ann_file=str(tmp_path / 'none.txt'))
    ann = _list(tmp_path, ['bob/2.jpg 1', 'alice/x.jpg'])
    with pytest.raises(ValueError, match=r'list.txt:2: expected "<path> <integer label>"'):
        FaceListDataset(ann_file=ann, data_root=folder_tree)
    ann = _list(tmp_path, ['bob/2.jpg one'])
    with pytest.raises(ValueError, match=r'list.txt:1:'):
        FaceListDataset(ann_file=ann, data_root=folder_tree)
    ann = _list(tmp_path, ['bob/2.jpg -3'])
    with pytest.raises(ValueError, match='negative'):
        FaceListDataset(ann_file=ann, data_root=folder_tree)
    ann = _list(tmp_path, ['bob/2.jpg 1', 'bob/9.jpg 1'])
    with pytest.raises(FileNotFoundError, match=r'list.txt:2: image .*bob/9.jpg not found'):
        FaceListDataset(ann_file=ann, data_root=folder_tree)
    ds = FaceListDataset(ann_file=ann, data_root=folder_tree, skip_bad=True)
    assert ds.num_skipped == 1 and len(ds) == 1
    with pytest.raises(ValueError, match='ann_file'):
        FaceListDataset(ann_file='')
