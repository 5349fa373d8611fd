"""pack_dataset, PackedFaceDataset and tools/dataset_converters/pack.py: same pixels, labels, errors."""
import importlib.util
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from lrfr.datasets import CelebADataset, FaceFolderDataset, PackedFaceDataset
from lrfr.datasets.converters import pack_dataset
from lrfr.datasets.transforms import FaceImageError, load_face_image
from lrfr.registry import DATASETS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN, SUBSET_GALLERY

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def faces(tmp_path):
    """Identity folders with ragged sizes, a grayscale PNG and an RGBA PNG."""
    root = tmp_path / 'faces'
    rng = np.random.default_rng(0)
    specs = {'a/1.jpg': (18, 14, 3), 'a/2.png': (21, 16, 3), 'b/1.png': (9, 7),
             'b/2.png': (12, 11, 4), 'c/1.jpg': (32, 24, 3)}
    for rel, shape in specs.items():
        os.makedirs(root / osp.dirname(rel), exist_ok=True)
        cv2.imwrite(str(root / rel), rng.integers(0, 256, shape, dtype=np.uint8))
    return str(root)


def _files_dataset(root, **kwargs):
    return FaceFolderDataset(root, subset=SUBSET_GALLERY, branch=BRANCH_SYN, **kwargs)


@pytest.mark.parametrize('pad_size', [None, (32, 24)])
def test_pack_round_trip(faces, tmp_path, pad_size):
    source = _files_dataset(faces)
    index = pack_dataset(source, str(tmp_path / 'out' / 'faces'), pad_size=pad_size,
                         num_threads=2, progress=False)
    assert index.endswith('faces.npz') and osp.isfile(index[:-4] + '.bin')
    packed = DATASETS.build(dict(type='PackedFaceDataset', pack_file=index))
    assert len(packed) == len(source) == 5
    assert packed.metainfo['classes'] == source.metainfo['classes'] == ('a', 'b', 'c')
    for i in range(len(source)):
        want, got = source.get_data_info(i), packed.get_data_info(i)
        for key in ('img_path', 'gt_label', 'subset', 'branch'):
            assert got[key] == want[key]
        # the same decoded pixels as the pipeline's loader: gray -> 3 channels, alpha dropped
        assert np.array_equal(got['img'], load_face_image(want['img_path']))
        assert got['img'].dtype == np.uint8 and got['img'].shape[2] == 3
        assert got['img_shape'] == got['img'].shape[:2] and got['img'].flags.writeable


def test_same_pipeline_same_output(faces, tmp_path):
    pipeline = [dict(type='LoadFaceImage'), dict(type='ResizeFace', size=(8, 8)),
                dict(type='PackFaceInputs')]
    source = _files_dataset(faces, pipeline=pipeline)
    packed = PackedFaceDataset(pack_dataset(source, str(tmp_path / 'p'), progress=False),
                               pipeline=pipeline)
    for i in range(len(source)):
        a, b = source[i], packed[i]
        assert torch.equal(a['inputs'], b['inputs'])
        assert a['data_samples'].gt_label.tolist() == b['data_samples'].gt_label.tolist()
        assert a['data_samples'].img_path == b['data_samples'].img_path
        assert b['data_samples'].branch == BRANCH_SYN


def test_branch_override_and_subset(faces, tmp_path):
    index = pack_dataset(_files_dataset(faces), str(tmp_path / 'p'), progress=False)
    packed = PackedFaceDataset(index, branch=BRANCH_NAT, indices=[4, 0])
    assert [packed.get_data_info(i)['branch'] for i in range(2)] == [BRANCH_NAT] * 2
    assert packed.get_gt_labels().tolist() == [2, 0]
    sub = PackedFaceDataset(index).get_subset([1])  # deep-copies the dataset, not the pixels
    assert np.array_equal(sub.get_data_info(0)['img'],
                          load_face_image(osp.join(faces, 'a', '2.png')))


def test_pack_errors_name_the_file(faces, tmp_path):
    bad = osp.join(faces, 'b', '3.jpg')
    data = cv2.imencode('.jpg', np.random.default_rng(1).integers(0, 256, (16, 16, 3),
                                                                  dtype=np.uint8))[1].tobytes()
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 2])  # truncated JPEG
    source = _files_dataset(faces)
    with pytest.raises(FaceImageError, match=r'b/3.jpg: truncated or corrupt JPEG'):
        pack_dataset(source, str(tmp_path / 'p'), progress=False)
    assert not osp.exists(tmp_path / 'p.npz')  # no half-written pack is left for use
    index = pack_dataset(source, str(tmp_path / 'p'), skip_bad=True, progress=False)
    packed = PackedFaceDataset(index)
    assert len(packed) == 5 and bad not in [packed.get_data_info(i)['img_path'] for i in range(5)]
    os.remove(bad)
    with pytest.raises(FaceImageError, match=r'b/3.jpg: file not found'):
        pack_dataset(source, str(tmp_path / 'q'), progress=False)  # deleted after listing
    source = _files_dataset(faces)
    with pytest.raises(ValueError, match=r'c/1.jpg: image is 32x24, larger than pad_size 24x24'):
        pack_dataset(source, str(tmp_path / 'q'), pad_size=(24, 24), progress=False)
    with pytest.raises(ValueError, match='pad_size'):
        pack_dataset(source, str(tmp_path / 'q'), pad_size=(16, 0))


def test_packed_dataset_bad_files(faces, tmp_path):
    with pytest.raises(ValueError, match='.npz index'):
        PackedFaceDataset(str(tmp_path / 'p.bin'))
    with pytest.raises(FileNotFoundError, match='packed index not found'):
        PackedFaceDataset(str(tmp_path / 'none.npz'))
    index = pack_dataset(_files_dataset(faces), str(tmp_path / 'p'), progress=False)
    with open(index[:-4] + '.bin', 'r+b') as f:
        f.truncate(100)
    with pytest.raises(ValueError, match=r'p.bin: 100 bytes, the index expects'):
        PackedFaceDataset(index)
    os.remove(index[:-4] + '.bin')
    with pytest.raises(FileNotFoundError, match='packed pixel file not found'):
        PackedFaceDataset(index)
    np.savez(str(tmp_path / 'other.npz'), x=np.zeros(3))
    with pytest.raises(ValueError, match='not a packed face index'):
        PackedFaceDataset(str(tmp_path / 'other.npz'))


def test_pack_celeba_boxes(tmp_path):
    root = tmp_path / 'celeba'
    (root / 'img_celeba').mkdir(parents=True)
    img = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    cv2.imwrite(str(root / 'img_celeba' / '000001.png'), img)  # png: lossless comparison
    (root / 'identity_CelebA.txt').write_text('000001.png 5\n')
    (root / 'list_bbox_celeba.txt').write_text('1\nimage_id x_1 y_1 width height\n'
                                               '000001.png 4 2 10 8\n')
    source = CelebADataset(str(root), split='all', in_the_wild=True)
    kept = PackedFaceDataset(pack_dataset(source, str(tmp_path / 'raw'), progress=False))
    assert kept.get_data_info(0)['bbox'] == (4, 2, 10, 8)
    assert kept.get_data_info(0)['img'].shape == (20, 30, 3)
    cropped = PackedFaceDataset(pack_dataset(source, str(tmp_path / 'crop'), crop_bbox=True,
                                             progress=False))
    assert 'bbox' not in cropped.get_data_info(0)
    assert np.array_equal(cropped.get_data_info(0)['img'], img[2:10, 4:14])


def _load_tool():
    path = osp.join(REPO, 'tools', 'dataset_converters', 'pack.py')
    spec = importlib.util.spec_from_file_location('lrfr_pack_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_tool_from_args_and_config(faces, tmp_path, monkeypatch):
    tool = _load_tool()
    out = str(tmp_path / 'cli' / 'faces')
    monkeypatch.setattr(sys, 'argv', ['pack.py', 'FaceFolderDataset', out, '--ds-args',
                                      f'data_root={faces}', 'subset=probe', '--pad-size', '32',
                                      '32', '--threads', '1'])
    tool.main()
    packed = PackedFaceDataset(out + '.npz')
    assert len(packed) == 5 and packed.get_data_info(0)['subset'] == 'probe'
    config = tmp_path / 'cfg.py'
    config.write_text(
        'train_dataloader = dict(dataset=dict(type="ConcatDataset", datasets=[\n'
        f'    dict(type="FaceFolderDataset", data_root="{faces}",\n'
        '         pipeline=[dict(type="LoadFaceImage")])]))\n')
    monkeypatch.setattr(sys, 'argv', ['pack.py', str(config), out + '2', '--key',
                                      'train_dataloader.dataset.datasets.0'])
    tool.main()
    assert len(PackedFaceDataset(out + '2.npz')) == 5
    monkeypatch.setattr(sys, 'argv', ['pack.py', str(config), out + '3', '--key',
                                      'train_dataloader.dataset.datasets.3'])
    with pytest.raises(KeyError, match="failed at '3'"):
        tool.main()
