"""RecordIO: the writer's framing, MXFaceDataset round trips (both InsightFace layouts), workers, bad files."""
import importlib.util
import os
import os.path as osp
import pickle
import struct
import sys

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lrfr.datasets import FaceFolderDataset, MXFaceDataset
from lrfr.datasets.converters.recordio import RecordWriter, frame_record, pack_record, write_face_rec
from lrfr.datasets.mx_face import REC_MAGIC, RecordFile, RecordIOError, read_record_at, unpack_record
from lrfr.registry import DATASETS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAGIC = struct.pack('<I', REC_MAGIC)


@pytest.fixture
def faces(tmp_path):
    """Three identity folders with JPEG and PNG faces of mixed sizes (integer folder names: '2' < '10')."""
    root = tmp_path / 'faces'
    rng = np.random.default_rng(0)
    specs = {'2/a.jpg': (20, 16), '2/b.png': (22, 18), '10/a.jpg': (30, 24), '7/a.png': (12, 10),
             '7/b.jpg': (16, 16), '7/c.jpg': (24, 20)}
    for rel, shape in specs.items():
        os.makedirs(root / osp.dirname(rel), exist_ok=True)
        cv2.imwrite(str(root / rel), rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    return str(root)


def _samples(folder):
    ds = FaceFolderDataset(data_root=folder)
    return ds, [(ds.get_data_info(i)['img_path'], ds.get_data_info(i)['gt_label']) for i in range(len(ds))]


def _read_file(path, offset):
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_record_at(fd, offset, path, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def test_frame_record_splits_at_aligned_magic(tmp_path):
    payload = b'abcd' + MAGIC + b'efgh' + MAGIC + b'xy'
    framed = frame_record(payload)
    # three parts: 'abcd' (flag 1), 'efgh' (flag 2), 'xy' (flag 3, padded to 4)
    heads = [struct.unpack_from('<II', framed, pos) for pos in (0, 12, 24)]
    assert [(m, lrec >> 29, lrec & (2**29 - 1)) for m, lrec in heads] == [
        (REC_MAGIC, 1, 4), (REC_MAGIC, 2, 4), (REC_MAGIC, 3, 2)]
    assert len(framed) == 36
    # an unaligned copy of the magic is not a split point
    assert struct.unpack_from('<I', frame_record(b'a' + MAGIC + b'bcd'), 4)[0] >> 29 == 0
    path = str(tmp_path / 'x.rec')
    with RecordWriter(path) as writer:
        writer.write(0, b'first')
        offset = writer.write(1, payload)
    assert offset == 8 + 8  # 'first' padded to 8 bytes after its 8-byte part header
    assert _read_file(path, offset) == payload
    assert open(path[:-4] + '.idx').read() == f'0\t0\n1\t{offset}\n'


def test_pack_record_header_layouts():
    labels, flag, id1, _, body = unpack_record(pack_record([3], b'img', id1=5), 'x')
    assert (labels, flag, id1, body) == ((3.0,), 0, 5, b'img')
    labels, flag, _, _, body = unpack_record(pack_record([7, 9.5], b'img'), 'x')
    assert (labels, flag, body) == ((7.0, 9.5), 2, b'img')
    with pytest.raises(RecordIOError, match='announces 4 labels'):
        unpack_record(struct.pack('<IfQQ', 4, 0.0, 0, 0) + b'abc', 'x')


@pytest.mark.parametrize('header', [True, False])
def test_round_trip_folder_to_dataset(faces, tmp_path, header):
    folder, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out, image_size=(112, 96), header=header)
    ds = DATASETS.build(dict(type='MXFaceDataset', data_root=out, branch='syn'))
    assert len(ds) == len(folder) == 6
    assert ds.metainfo['num_classes'] == 3 and ds.image_size == (112, 96)
    got = sorted((ds.get_data_info(i)['gt_label'], ds.get_data_info(i)['img'].tobytes()) for i in range(len(ds)))
    want = sorted((folder.get_data_info(i)['gt_label'], cv2.imread(folder.get_data_info(i)['img_path']).tobytes())
                  for i in range(len(folder)))
    assert got == want
    info = ds.get_data_info(0)
    assert info['branch'] == 'syn' and info['subset'] == 'train' and info['img'].dtype == np.uint8
    assert ds.get_gt_labels().tolist() == sorted(label for _, label in samples)


def test_folder2rec_tool(faces, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        'folder2rec', osp.join(REPO, 'tools', 'dataset_converters', 'folder2rec.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'tool_rec')
    monkeypatch.setattr(sys, 'argv', ['folder2rec.py', faces, out, '--size', '64', '64'])
    tool.main()
    assert open(osp.join(out, 'property')).read().strip() == '3,64,64'
    ds = MXFaceDataset(out)
    # folder '2' -> 0 (two images), '7' -> 1 (three), '10' -> 2 (one): numeric order, as FaceFolderDataset
    assert sorted(ds.get_gt_labels().tolist()) == [0, 0, 1, 1, 1, 2]
    header, *_ = unpack_record(_read_file(osp.join(out, 'train.rec'), 0), 'header')
    assert header == (7.0, 10.0)  # images 1..6, identity records 7..9


def test_dataloader_workers_open_their_own_file(faces, tmp_path):
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out)
    pipeline = [dict(type='LoadFaceImage'), dict(type='ResizeFace', size=(16, 16)), dict(type='PackFaceInputs')]
    ds = MXFaceDataset(out, pipeline=pipeline)
    ds[0]  # the parent opens its descriptor first: workers must not reuse it
    assert pickle.loads(pickle.dumps(ds))._rec is None
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=lambda b: b)
    seen = [(int(s['data_samples'].gt_label), s['inputs'].sum().item()) for batch in loader for s in batch]
    direct = [(int(ds[i]['data_samples'].gt_label), ds[i]['inputs'].sum().item()) for i in range(len(ds))]
    assert seen == direct and len(seen) == 6
    copy = pickle.loads(pickle.dumps(RecordFile(ds._rec.path)))
    assert copy._fd is None and unpack_record(copy.read(0), 'h')[0] == (7.0, 10.0)


def test_missing_index_and_bad_files(faces, tmp_path):
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    rec = write_face_rec(samples, out)
    idx = rec[:-4] + '.idx'
    offsets = dict(line.split('\t') for line in open(idx).read().splitlines())
    third = int(offsets['3'])

    os.rename(idx, idx + '.bak')
    with pytest.raises(FileNotFoundError, match=r'train\.rec has no index .*train\.idx'):
        MXFaceDataset(out)
    os.rename(idx + '.bak', idx)

    data = bytearray(open(rec, 'rb').read())
    bad = bytearray(data)
    bad[third] ^= 0xFF
    with open(rec, 'wb') as f:
        f.write(bad)
    with pytest.raises(RecordIOError, match=rf'train\.rec: bad magic 0x[0-9a-f]{{8}} at offset {third} '):
        MXFaceDataset(out).get_data_info(2)  # key 3; loading read only the header and identity records

    with open(rec, 'wb') as f:  # cut inside the third image: the identity records after it are gone
        f.write(data[:third + 20])
    first_identity = int(offsets['7'])
    with pytest.raises(RecordIOError, match=rf'truncated record at offset {first_identity} \(file ends at '
                                            rf'{third + 20} bytes\)'):
        MXFaceDataset(out)


def test_truncated_record_without_identity_records(faces, tmp_path):
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    rec = write_face_rec(samples, out, header=False)  # every header is read at load
    offsets = dict(line.split('\t') for line in open(rec[:-4] + '.idx').read().splitlines())
    third = int(offsets['2'])
    data = open(rec, 'rb').read()
    with open(rec, 'wb') as f:
        f.write(data[:third + 40])
    with pytest.raises(RecordIOError, match=rf'train\.rec: truncated record at offset {third}: \d+ bytes '
                                            rf'announced, 32 left'):
        MXFaceDataset(out)


def test_labels_outside_property(faces, tmp_path):
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out, header=False, num_classes=2)  # property says 2 identities, records hold 3
    offset = open(osp.join(out, 'train.idx')).read().splitlines()[-1].split('\t')[1]
    with pytest.raises(ValueError, match=rf'record 5 at offset {offset} has label 2, outside \[0, 2\)'):
        MXFaceDataset(out)


def test_labels_outside_a_head(faces, tmp_path):
    from lrfr.models.fr_heads import ArcFaceHead
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out)
    labels = torch.from_numpy(MXFaceDataset(out).get_gt_labels())
    head = ArcFaceHead(num_classes=2, in_channels=4)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 2\) for this head, got values in \[0, 2\]'):
        head.loss(torch.randn(len(labels), 4), labels)


def test_compact_index_subsets_and_lazy_init(faces, tmp_path):
    _, samples = _samples(faces)
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out)
    full = MXFaceDataset(out)
    assert full.data_list == [] and full._keys.dtype == np.int64  # three arrays, no per-sample dicts
    assert full.get_gt_labels().tolist() == [0, 0, 1, 1, 1, 2] and full.get_cat_ids(4) == [1]
    last = full.get_data_info(-1)
    assert last['sample_idx'] == 5 and last['rec_key'] == 6 and last['img_path'].endswith('train.rec#6')
    lazy = MXFaceDataset(out, lazy_init=True, indices=[5, 0])
    assert not lazy._fully_initialized and len(lazy) == 2 and lazy.get_gt_labels().tolist() == [2, 0]
    assert MXFaceDataset(out, indices=2).get_gt_labels().tolist() == [0, 0]
    assert MXFaceDataset(out, indices=-1).get_gt_labels().tolist() == [2]
    sub = full.get_subset([3, 1])
    assert len(sub) == 2 and len(full) == 6
    np.testing.assert_array_equal(sub.get_data_info(0)['img'], full.get_data_info(3)['img'])


def test_writer_and_index_refuse_bad_input(faces, tmp_path):
    _, samples = _samples(faces)
    with pytest.raises(ValueError, match='identity records need labels 0..K-1 with every label used'):
        write_face_rec([(p, 2 * label) for p, label in samples], str(tmp_path / 'gap'))
    with pytest.raises(ValueError, match='labels must be >= 0, got -1'):
        write_face_rec([(samples[0][0], -1)], str(tmp_path / 'neg'))
    with RecordWriter(str(tmp_path / 'dup.rec')) as writer:
        writer.write(0, b'x')
        with pytest.raises(ValueError, match='key 0 written twice'):
            writer.write(0, b'y')
    out = str(tmp_path / 'rec')
    write_face_rec(samples, out)
    idx = osp.join(out, 'train.idx')
    lines = open(idx).read().splitlines()
    lines[2] = '2 notanumber'
    open(idx, 'w').write('\n'.join(lines) + '\n')
    with pytest.raises(RecordIOError, match=r'train\.idx:3: expected "key<TAB>offset", got \'2 notanumber\''):
        MXFaceDataset(out)
