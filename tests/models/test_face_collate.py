"""face_collate: pseudo_collate's batch with the faces re-homed in one storage (one shm segment per batch)."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS
from mmpretrain.structures import DataSample

from lrfr.models.data_preprocessors import face_collate


def _sample(i: int, pair: bool, size=(6, 5)) -> dict:
    sample = DataSample().set_gt_label(i)
    sample.set_metainfo(dict(sample_idx=i))
    if pair:
        sample.hr_img = torch.full((3, 12, 10), i, dtype=torch.uint8)
    return dict(inputs=torch.full((3, *size), 10 + i, dtype=torch.uint8), data_samples=sample)


def _storages(tensors):
    return {t.untyped_storage().data_ptr() for t in tensors}


def test_same_batch_as_pseudo_collate_in_one_storage_whatever_the_face_sizes():
    samples = [_sample(i, pair=i % 2 == 0, size=(6, 5) if i < 4 else (7, 5)) for i in range(6)]
    ref = pseudo_collate(samples)
    out = face_collate(samples)
    assert [t.shape for t in out['inputs']] == [t.shape for t in ref['inputs']]
    assert all(torch.equal(a, b) for a, b in zip(out['inputs'], ref['inputs']))
    assert len(_storages(out['inputs'])) == 1  # two face sizes, one flat storage
    same = face_collate(samples[:4])['inputs']  # one size: stacked (default_collate)
    assert len(_storages(same)) == 1 and all(torch.equal(a, b) for a, b in zip(same, ref['inputs']))
    assert len(_storages(ref['inputs'])) == 6
    assert [int(s.gt_label) for s in out['data_samples']] == list(range(6))
    assert ['hr_img' in s for s in out['data_samples']] == [True, False] * 3


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, sizes=((6, 5),)):
        self.sizes = sizes

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return _sample(i, pair=True, size=self.sizes[i % len(self.sizes)])


def test_a_worker_sends_the_faces_in_one_segment():
    # Rebuilt in this process from what the worker shared: all faces still share one storage, so one
    # segment crossed (pseudo_collate: one per face, which is the cost this collate removes). The HR
    # targets travel inside the DataSamples (mmpretrain pickles their tensors as NumPy bytes).
    loader = torch.utils.data.DataLoader(_Pairs(), batch_size=8, num_workers=1, collate_fn=face_collate)
    batch = next(iter(loader))
    assert len(_storages(batch['inputs'])) == 1
    assert [int(s.hr_img[0, 0, 0]) for s in batch['data_samples']] == list(range(8))
    assert [int(t[0, 0, 0]) for t in batch['inputs']] == [10 + i for i in range(8)]
    ref = next(iter(torch.utils.data.DataLoader(_Pairs(), batch_size=8, num_workers=1, collate_fn=pseudo_collate)))
    assert len(_storages(ref['inputs'])) == 8
    # faces of several sizes (native faces left for a batched ResizeFace) still cross in one segment
    mixed = _Pairs(sizes=((6, 5), (9, 7), (13, 10)))
    batch = next(iter(torch.utils.data.DataLoader(mixed, batch_size=8, num_workers=1, collate_fn=face_collate)))
    assert len(_storages(batch['inputs'])) == 1
    assert [tuple(t.shape) for t in batch['inputs']] == [(3, *mixed.sizes[i % 3]) for i in range(8)]
    assert [int(t[0, 0, 0]) for t in batch['inputs']] == [10 + i for i in range(8)]


def test_registered_and_bad_input():
    assert FUNCTIONS.get('face_collate') is face_collate
    with pytest.raises(TypeError, match='face_collate: samples must be dicts with a tensor "inputs"'):
        face_collate([torch.zeros(2), torch.zeros(2)])
