"""CelebADataset on generated trees in the official (Img/ Anno/ Eval/) and flat layouts; CropBBox."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from lrfr.datasets import CelebADataset
from lrfr.registry import DATASETS, TRANSFORMS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN, SUBSET_GALLERY, SUBSET_TRAIN

# image -> (CelebA identity, partition 0/1/2)
ANNOTATIONS = {'000001.jpg': (2880, 0), '000002.jpg': (2937, 0), '000003.jpg': (8692, 0),
               '000004.jpg': (5805, 1), '000005.jpg': (2880, 0), '000006.jpg': (10177, 2)}
BOXES = {name: (2 + i, 3, 10, 12) for i, name in enumerate(sorted(ANNOTATIONS))}


def _write_text(path: str, lines) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def make_celeba(root: str, nested: bool = True, csv: bool = False, wild: bool = False,
                annotations=ANNOTATIONS) -> str:
    """A CelebA tree: official nesting (Img/ Anno/ Eval/) or flat (torchvision), .txt or Kaggle .csv."""
    img_dir = osp.join(root, 'Img' if nested else '', 'img_celeba' if wild else 'img_align_celeba')
    os.makedirs(img_dir, exist_ok=True)
    for i, name in enumerate(sorted(annotations)):
        cv2.imwrite(osp.join(img_dir, name), np.full((24, 20, 3), 10 * i % 256, np.uint8))
    anno = osp.join(root, 'Anno') if nested else root
    evald = osp.join(root, 'Eval') if nested else root
    _write_text(osp.join(anno, 'identity_CelebA.txt'),
                [f'{n} {ident}' for n, (ident, _) in sorted(annotations.items())])
    if csv:
        _write_text(osp.join(evald, 'list_eval_partition.csv'),
                    ['image_id,partition'] + [f'{n},{p}' for n, (_, p) in sorted(annotations.items())])
        _write_text(osp.join(anno, 'list_bbox_celeba.csv'),
                    ['image_id,x_1,y_1,width,height'] +
                    [f'{n},' + ','.join(map(str, b)) for n, b in sorted(BOXES.items())])
    else:
        _write_text(osp.join(evald, 'list_eval_partition.txt'),
                    [f'{n} {p}' for n, (_, p) in sorted(annotations.items())])
        _write_text(osp.join(anno, 'list_bbox_celeba.txt'),
                    [str(len(BOXES)), 'image_id x_1 y_1 width height'] +
                    [f'{n}  ' + '  '.join(map(str, b)) for n, b in sorted(BOXES.items())])
    return root


def _names(ds):
    return [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]


def test_official_layout_partition_split(tmp_path):
    root = make_celeba(str(tmp_path / 'CelebA'))
    ds = DATASETS.build(dict(type='CelebADataset', data_root=root, split='train'))
    assert _names(ds) == ['000001.jpg', '000002.jpg', '000003.jpg', '000005.jpg']
    # identities 2880 < 2937 < 8692 -> contiguous labels 0, 1, 2
    assert ds.get_gt_labels().tolist() == [0, 1, 2, 0]
    assert ds.metainfo['classes'] == ('2880', '2937', '8692')
    info = ds.get_data_info(0)
    assert info['branch'] == BRANCH_SYN and info['subset'] == SUBSET_TRAIN
    assert osp.join('Img', 'img_align_celeba') in info['img_path'] and 'bbox' not in info
    assert _names(CelebADataset(root, split='val')) == ['000004.jpg']
    test = CelebADataset(root, split='test', subset=SUBSET_GALLERY, branch=BRANCH_NAT)
    assert test.get_gt_labels().tolist() == [0] and test.metainfo['classes'] == ('10177',)
    assert test.get_data_info(0)['subset'] == SUBSET_GALLERY


def test_flat_layout_all(tmp_path):
    root = make_celeba(str(tmp_path / 'celeba'), nested=False)
    ds = CelebADataset(root, split='all')
    assert len(ds) == 6 and ds.metainfo['num_classes'] == 5
    assert ds.get_gt_labels().tolist() == [0, 1, 3, 2, 0, 4]


def test_in_the_wild_with_boxes_and_crop(tmp_path):
    root = make_celeba(str(tmp_path / 'CelebA'), wild=True)
    ds = CelebADataset(root, split='train', in_the_wild=True,
                       pipeline=[dict(type='LoadFaceImage'), dict(type='CropBBox')])
    info = ds.get_data_info(1)
    assert 'img_celeba' in info['img_path'] and info['bbox'] == BOXES['000002.jpg']
    out = ds[1]
    x, y, w, h = BOXES['000002.jpg']
    assert out['img'].shape == (h, w, 3) and out['crop_bbox'] == (x, y, x + w, y + h)


def test_kaggle_csv_tables(tmp_path):
    root = make_celeba(str(tmp_path / 'kaggle'), nested=False, csv=True, wild=True)
    ds = CelebADataset(root, split='train', in_the_wild=True)
    assert len(ds) == 4 and ds.get_data_info(3)['bbox'] == BOXES['000005.jpg']


def test_identity_split_seeded_and_disjoint(tmp_path):
    annotations = {f'{i:06d}.jpg': (100 + i % 20, 0) for i in range(1, 61)}  # 20 identities
    root = make_celeba(str(tmp_path / 'CelebA'), annotations=annotations)
    os.remove(osp.join(root, 'Eval', 'list_eval_partition.txt'))  # not needed by identity split
    splits = {}
    for split in ('train', 'val', 'test'):
        ds = CelebADataset(root, split=split, split_by='identity', split_fractions=(0.6, 0.2, 0.2))
        splits[split] = set(ds.metainfo['classes'])
        assert sorted(set(ds.get_gt_labels().tolist())) == list(range(len(splits[split])))
    assert [len(s) for s in splits.values()] == [12, 4, 4]
    assert set.union(*splits.values()) == {str(100 + i) for i in range(20)}
    again = CelebADataset(root, split='val', split_by='identity', split_fractions=(0.6, 0.2, 0.2))
    assert set(again.metainfo['classes']) == splits['val']
    other = CelebADataset(root, split='val', split_by='identity', split_fractions=(0.6, 0.2, 0.2),
                          seed=1)
    assert set(other.metainfo['classes']) != splits['val']


def test_bad_arguments():
    with pytest.raises(ValueError, match='split_fractions'):
        CelebADataset('x', split_by='identity', split_fractions=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match='split_by'):
        CelebADataset('x', split_by='random')
    with pytest.raises(ValueError, match='subset'):
        CelebADataset('x', subset='query')


def test_missing_files_named(tmp_path):
    root = str(tmp_path / 'CelebA')
    with pytest.raises(FileNotFoundError, match='img_align_celeba'):
        CelebADataset(root)
    make_celeba(root)
    os.remove(osp.join(root, 'Anno', 'identity_CelebA.txt'))
    with pytest.raises(FileNotFoundError, match=r'Anno/identity_CelebA.txt'):
        CelebADataset(root)
    make_celeba(root, wild=True)
    os.remove(osp.join(root, 'Anno', 'list_bbox_celeba.txt'))
    with pytest.raises(FileNotFoundError,
                       match=r'(?s)bounding-box file not found.*Anno/list_bbox_celeba.txt'):
        CelebADataset(root, in_the_wild=True)


def test_bad_lines_and_missing_entries(tmp_path):
    root = make_celeba(str(tmp_path / 'CelebA'))
    ident = osp.join(root, 'Anno', 'identity_CelebA.txt')
    with open(ident, 'a') as f:
        f.write('000007.jpg\n')
    with pytest.raises(ValueError, match=r'identity_CelebA.txt:7: expected'):
        CelebADataset(root)
    with open(ident, 'w') as f:
        f.write(''.join(f'{n} {i}\n' for n, (i, _) in sorted(ANNOTATIONS.items())))
        f.write('000007.jpg 3\n')  # listed, partitioned, but no image file
    with open(osp.join(root, 'Eval', 'list_eval_partition.txt'), 'a') as f:
        f.write('000007.jpg 0\n')
    with pytest.raises(FileNotFoundError, match='000007.jpg.*missing on disk'):
        CelebADataset(root)
    ds = CelebADataset(root, skip_bad=True)
    assert ds.num_skipped == 1 and len(ds) == 4
    with open(ident, 'a') as f:
        f.write('000008.jpg 3\n')  # no partition entry
    with pytest.raises(ValueError, match='000008.jpg.*list_eval_partition'):
        CelebADataset(root)


def test_invalid_box_named(tmp_path):
    root = make_celeba(str(tmp_path / 'CelebA'), wild=True)
    box_file = osp.join(root, 'Anno', 'list_bbox_celeba.txt')
    with open(box_file, 'a') as f:
        f.write('000009.jpg 1 2 3\n')
    with pytest.raises(ValueError, match=r'list_bbox_celeba.txt:9: expected'):
        CelebADataset(root, in_the_wild=True)
    make_celeba(root, wild=True)
    text = open(box_file).read().replace('000003.jpg  4  3  10  12', '000003.jpg  4  3  0  12')
    with open(box_file, 'w') as f:
        f.write(text)
    with pytest.raises(ValueError, match='000003.jpg: no valid bounding box'):
        CelebADataset(root, in_the_wild=True)
    assert CelebADataset(root, in_the_wild=True, skip_bad=True).num_skipped == 1


def test_crop_bbox_transform():
    crop = TRANSFORMS.build(dict(type='CropBBox', scale=2.0))
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    out = crop(dict(img=img, bbox=(4, 4, 4, 2), img_path='a.jpg'))
    # centre (6, 5), size 8x4 -> x 2..10, y 3..7
    assert out['crop_bbox'] == (2, 3, 10, 7)
    assert np.array_equal(out['img'], img[3:7, 2:10]) and out['img_shape'] == (4, 8)
    clipped = TRANSFORMS.build(dict(type='CropBBox'))(dict(img=img, bbox=(-3, 8, 6, 6)))
    assert clipped['crop_bbox'] == (0, 8, 3, 10)
    with pytest.raises(ValueError, match='a.jpg.*outside'):
        crop(dict(img=img, bbox=(40, 40, 2, 2), img_path='a.jpg'))
    with pytest.raises(ValueError, match='w > 0'):
        crop(dict(img=img, bbox=(1, 1, 0, 2)))
    with pytest.raises(KeyError, match='bbox'):
        crop(dict(img=img))
    assert TRANSFORMS.build(dict(type='CropBBox', skip_missing=True))(dict(img=img))['img'] is img
    with pytest.raises(ValueError, match='scale'):
        TRANSFORMS.build(dict(type='CropBBox', scale=0))
