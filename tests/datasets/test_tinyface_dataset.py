"""TinyFaceDataset on generated trees in the official layout, with the real protocol file names."""
import logging
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import scipy.io

from lrfr.datasets import TinyFaceDataset
from lrfr.datasets.tinyface import load_tinyface_protocol, parse_tinyface_name
from lrfr.errors import ProtocolError
from lrfr.registry import DATASETS
from lrfr.structures import (BRANCH_NAT, BRANCH_SYN, DISTRACTOR_LABEL, SUBSET_GALLERY,
                             SUBSET_PROBE, SUBSET_TRAIN)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The official protocol files live in the project's shared/ folder beside the checkout (not in the repo:
# we do not redistribute them); LRFR_TINYFACE_PROTOCOL overrides.
PROTOCOL_DIR = os.environ.get('LRFR_TINYFACE_PROTOCOL',
                              osp.join(osp.dirname(REPO), 'shared', 'data', 'tinyface_protocol'))
TRAIN_FILES = {'3': ['3_1.jpg', '3_2.jpg'], '10': ['10_12.jpg', '10_2.jpg', '10_1.jpg'],
               '7': ['7_5.jpg']}
DISTRACTORS = ['zz_9.jpeg', 'b.jpg', 'a.png']

needs_protocol = pytest.mark.skipif(not osp.isdir(PROTOCOL_DIR),
                                    reason='official TinyFace protocol files not available')


def _write(path: str, data: bytes) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def _jpeg() -> bytes:
    # One encoded 4x4 image written under every name: 8k files in well under a second.
    return cv2.imencode('.jpg', np.full((4, 4, 3), 128, np.uint8))[1].tobytes()


def make_tree(root: str, probe, gallery, train=TRAIN_FILES, distractors=DISTRACTORS) -> str:
    data = _jpeg()
    for folder, names in train.items():
        for name in names:
            _write(osp.join(root, 'Training_Set', folder, name), data)
    for sub, names in (('Probe', probe), ('Gallery_Match', gallery),
                       ('Gallery_Distractor', distractors)):
        os.makedirs(osp.join(root, 'Testing_Set', sub), exist_ok=True)
        for name in names:
            _write(osp.join(root, 'Testing_Set', sub, name), data)
    return root


def write_protocol(folder: str, probe, gallery, probe_ids=None, gallery_ids=None) -> str:
    """Protocol .mat files in the official format (cell arrays of names, N x 1 ids)."""
    pids = sorted({parse_tinyface_name(n)[0] for n in list(probe) + list(gallery)})
    rank = {p: i + 1 for i, p in enumerate(pids)}
    os.makedirs(folder, exist_ok=True)
    for fname, set_key, ids_key, names, ids in (
            ('probe_img_ID_pairs.mat', 'probe_set', 'probe_ids', probe, probe_ids),
            ('gallery_match_img_ID_pairs.mat', 'gallery_set', 'gallery_ids', gallery, gallery_ids)):
        cells = np.empty((len(names), 1), dtype=object)
        for i, name in enumerate(names):
            cells[i, 0] = name
        if ids is None:
            ids = [rank[parse_tinyface_name(n)[0]] for n in names]
        scipy.io.savemat(osp.join(folder, fname),
                         {set_key: cells, ids_key: np.array(ids, np.float64)[:, None]})
    return folder


@pytest.fixture(scope='module')
def official():
    """The real protocol order (3,728 probes, 4,443 gallery matches)."""
    if not osp.isdir(PROTOCOL_DIR):
        pytest.skip('official TinyFace protocol files not available')
    return load_tinyface_protocol(PROTOCOL_DIR)


@pytest.fixture(scope='module')
def full_tree(tmp_path_factory, official):
    """A full-size test tree with the real file names (generated once per session)."""
    root = str(tmp_path_factory.mktemp('tinyface'))
    return make_tree(root, official['probe'], official['gallery'])


SMALL_PROBE = ['5_2.jpg', '2_1.jpg']
SMALL_GALLERY = ['2_3.jpg', '5_1.jpg', '9_1.jpg']


@pytest.fixture
def small_tree(tmp_path):
    return make_tree(str(tmp_path / 'tf'), SMALL_PROBE, SMALL_GALLERY)


# -- the official protocol ---------------------------------------------------------
@needs_protocol
def test_protocol_files_read_and_checked(official):
    assert len(official['probe']) == 3728 and len(official['gallery']) == 4443
    assert official['probe'][0] == '1_162.jpg'
    assert not set(official['probe']) & set(official['gallery'])


@needs_protocol
def test_test_split_follows_official_order(full_tree, official):
    ds = DATASETS.build(dict(type='TinyFaceDataset', data_root=full_tree, split='test',
                             protocol_dir=PROTOCOL_DIR))
    n_probe, n_match = len(official['probe']), len(official['gallery'])
    assert len(ds) == n_probe + n_match + len(DISTRACTORS)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    probe, match, dis = infos[:n_probe], infos[n_probe:n_probe + n_match], infos[n_probe + n_match:]
    assert [osp.basename(i['img_path']) for i in probe] == official['probe']
    assert [osp.basename(i['img_path']) for i in match] == official['gallery']
    assert {i['subset'] for i in probe} == {SUBSET_PROBE}
    assert {i['subset'] for i in match + dis} == {SUBSET_GALLERY}
    # labels = personID prefix, so every probe finds its identity in the gallery
    assert all(i['gt_label'] == int(osp.basename(i['img_path']).split('_')[0])
               for i in probe + match)
    assert {i['gt_label'] for i in probe} <= {i['gt_label'] for i in match}
    assert [osp.basename(i['img_path']) for i in dis] == sorted(DISTRACTORS)
    assert {i['gt_label'] for i in dis} == {DISTRACTOR_LABEL}
    assert {i['branch'] for i in infos} == {BRANCH_NAT}
    assert ds.metainfo['num_classes'] == 2569
    assert ds.get_gt_labels()[-1] == DISTRACTOR_LABEL


@needs_protocol
def test_without_protocol_sorted_numerically(full_tree, official):
    ds = TinyFaceDataset(full_tree, split='probe')
    keys = [parse_tinyface_name(osp.basename(ds.get_data_info(i)['img_path']))
            for i in range(len(ds))]
    assert keys == sorted(keys) and len(keys) == len(official['probe'])
    # same set of files as the protocol, only the order differs
    assert sorted(official['probe'], key=parse_tinyface_name) == \
        [f'{p}_{n}.jpg' for p, n in keys]
    gallery = TinyFaceDataset(full_tree, split='gallery', with_distractors=False)
    assert len(gallery) == len(official['gallery'])
    assert DISTRACTOR_LABEL not in gallery.get_gt_labels()


# -- training split ------------------------------------------------------------------
def test_train_split_contiguous_labels(small_tree):
    ds = TinyFaceDataset(small_tree, split='train', branch=BRANCH_SYN)
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    # personIDs 3 < 7 < 10 -> labels 0, 1, 2; files in numeric (personID, n) order
    assert names == ['3_1.jpg', '3_2.jpg', '7_5.jpg', '10_1.jpg', '10_2.jpg', '10_12.jpg']
    assert ds.get_gt_labels().tolist() == [0, 0, 1, 2, 2, 2]
    assert ds.metainfo['classes'] == ('3', '7', '10') and ds.metainfo['num_classes'] == 3
    info = ds.get_data_info(0)
    assert info['subset'] == SUBSET_TRAIN and info['branch'] == BRANCH_SYN


def test_small_protocol_order_and_gallery(small_tree, tmp_path):
    protocol = write_protocol(str(tmp_path / 'protocol'), SMALL_PROBE, SMALL_GALLERY)
    ds = TinyFaceDataset(small_tree, split='gallery', protocol_dir=protocol)
    names = [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))]
    assert names == SMALL_GALLERY + sorted(DISTRACTORS)
    assert ds.get_gt_labels().tolist() == [2, 5, 9] + [DISTRACTOR_LABEL] * 3
    probe = TinyFaceDataset(small_tree, split='probe', protocol_dir=protocol)
    assert probe.get_gt_labels().tolist() == [5, 2]


def test_lazy_init_defers_reading(tmp_path):
    ds = TinyFaceDataset(str(tmp_path / 'nowhere'), split='train', lazy_init=True)
    assert 'not loaded' in repr(ds)
    with pytest.raises(FileNotFoundError, match='TinyFace data_root not found: .*nowhere'):
        ds.full_init()


# -- bad input -------------------------------------------------------------------------
def test_bad_arguments():
    with pytest.raises(ValueError, match='split'):
        TinyFaceDataset('x', split='val')
    with pytest.raises(ValueError, match='branch'):
        TinyFaceDataset('x', branch='hr')


def test_missing_root_and_folders(tmp_path, small_tree):
    with pytest.raises(FileNotFoundError, match='nowhere') as info:
        TinyFaceDataset(str(tmp_path / 'nowhere'))
    assert 'Training_Set/<personID>' in str(info.value)  # the expected layout is shown
    shutil.rmtree(osp.join(small_tree, 'Testing_Set', 'Gallery_Distractor'))
    with pytest.raises(FileNotFoundError, match='with_distractors=False'):
        TinyFaceDataset(small_tree, split='gallery')
    assert len(TinyFaceDataset(small_tree, split='gallery', with_distractors=False)) == 3
    shutil.rmtree(osp.join(small_tree, 'Testing_Set', 'Probe'))
    with pytest.raises(FileNotFoundError, match='Probe'):
        TinyFaceDataset(small_tree, split='test', with_distractors=False)


def test_unparsable_name_raises_or_is_skipped(small_tree):
    bad = osp.join(small_tree, 'Testing_Set', 'Probe', 'face_a.jpg')
    _write(bad, _jpeg())
    with pytest.raises(ValueError, match='face_a.jpg'):
        TinyFaceDataset(small_tree, split='probe')
    ds = TinyFaceDataset(small_tree, split='probe', skip_bad=True)
    assert ds.num_skipped == 1 and len(ds) == 2


def test_empty_identity_folder_and_misfiled_image(small_tree):
    empty = osp.join(small_tree, 'Training_Set', '12')
    os.makedirs(empty)
    with pytest.raises(ValueError, match=r'Training_Set/12'):
        TinyFaceDataset(small_tree)
    ds = TinyFaceDataset(small_tree, skip_bad=True)
    # the skipped identity takes no label: labels stay contiguous
    assert ds.num_skipped == 1 and ds.metainfo['classes'] == ('3', '7', '10')
    os.rmdir(empty)
    _write(osp.join(small_tree, 'Training_Set', '7', '3_9.jpg'), _jpeg())
    with pytest.raises(ValueError, match='3_9.jpg.*differs from its folder'):
        TinyFaceDataset(small_tree)


def test_protocol_naming_missing_file(small_tree, tmp_path):
    protocol = write_protocol(str(tmp_path / 'p'), SMALL_PROBE + ['8_1.jpg'], SMALL_GALLERY)
    with pytest.raises(FileNotFoundError, match=r'Probe/8_1.jpg.*missing on disk'):
        TinyFaceDataset(small_tree, split='probe', protocol_dir=protocol)
    ds = TinyFaceDataset(small_tree, split='test', protocol_dir=protocol, skip_bad=True)
    assert ds.num_skipped == 1 and len(ds) == 2 + 3 + 3


def test_protocol_inconsistent_ids_or_keys(small_tree, tmp_path):
    # personID 2 is id 2 in the probe file but id 1 (the official renumbering) in the gallery file
    protocol = write_protocol(str(tmp_path / 'p'), SMALL_PROBE, SMALL_GALLERY, probe_ids=[3, 2])
    with pytest.raises(ProtocolError, match=r"gallery_match_img_ID_pairs.mat: '2_3.jpg' \(personID 2\) has id 1, "
                                            r"but '2_1.jpg' in .*probe_img_ID_pairs.mat gives personID 2 the id 2: "
                                            'one person, two ids'):
        TinyFaceDataset(small_tree, split='probe', protocol_dir=protocol)
    # personIDs 5 and 9 share id 7
    write_protocol(protocol, SMALL_PROBE, SMALL_GALLERY, probe_ids=[7, 2], gallery_ids=[2, 7, 7])
    with pytest.raises(ProtocolError, match=r"'9_1.jpg' \(personID 9\) has id 7, which '5_2.jpg' in "
                                            r'.*probe_img_ID_pairs.mat gives to personID 5: two people, one id'):
        TinyFaceDataset(small_tree, split='probe', protocol_dir=protocol)
    scipy.io.savemat(osp.join(protocol, 'probe_img_ID_pairs.mat'), {'names': np.zeros((2, 1))})
    with pytest.raises(ValueError, match='probe_set'):
        TinyFaceDataset(small_tree, split='probe', protocol_dir=protocol)
    write_protocol(protocol, SMALL_PROBE, SMALL_GALLERY)
    os.remove(osp.join(protocol, 'gallery_match_img_ID_pairs.mat'))
    with pytest.raises(FileNotFoundError, match='gallery_match_img_ID_pairs.mat'):
        TinyFaceDataset(small_tree, split='gallery', protocol_dir=protocol)


def test_protocol_with_other_consistent_ids_is_accepted_with_a_warning(small_tree, tmp_path):
    """Ids equal to the personIDs (not renumbered 1..K): one id per person in both files, so accepted."""
    protocol = write_protocol(str(tmp_path / 'p'), SMALL_PROBE, SMALL_GALLERY, probe_ids=[5, 2],
                              gallery_ids=[2, 5, 9])
    with pytest.warns(UserWarning, match=r'ids are consistent .* not the official renumbering of the personIDs '
                                         r'to 1..3 \(3 differ, e.g. personID 2 has id 2, officially 1\)'):
        ds = TinyFaceDataset(small_tree, split='test', protocol_dir=protocol)
    assert ds.get_gt_labels().tolist() == [5, 2, 2, 5, 9] + [DISTRACTOR_LABEL] * 3


def test_non_image_files_are_counted_and_reported(small_tree, monkeypatch):
    import lrfr.datasets.tinyface as tinyface
    logged = []
    monkeypatch.setattr(tinyface, 'print_log', lambda msg, **kwargs: logged.append((msg, kwargs)))
    for rel in (('Testing_Set', 'Probe', 'Thumbs.db'), ('Testing_Set', 'Gallery_Distractor', 'README.txt'),
                ('Testing_Set', 'Gallery_Distractor', 'notes.md')):
        _write(osp.join(small_tree, *rel), b'not an image')
    ds = TinyFaceDataset(small_tree, split='test')
    assert len(ds) == 2 + 3 + 3  # the non-image files are not samples
    lines = [msg for msg, _ in logged if 'non-image' in msg]
    assert len(lines) == 1 and '\n' not in lines[0], logged
    assert 'skipped 3 non-image file(s)' in lines[0]
    assert osp.join(small_tree, 'Testing_Set', 'Gallery_Distractor', 'README.txt') in lines[0]
    assert dict(logged)[lines[0]]['level'] == logging.WARNING
    logged.clear()
    TinyFaceDataset(small_tree, split='train')
    assert not [msg for msg, _ in logged if 'non-image' in msg]  # the training tree has none
