"""Persistent galleries: save/load round trip, refusal of other models and format versions, bad images,
faiss and torch backends answering alike."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from lrfr.apis import GALLERY_VERSION, FaceGallery, init_model
from lrfr.datasets.transforms.loading import FaceImageError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')


def faces(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (30 + i % 5, 24 + i % 3, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    m = init_model(CONFIG)
    m.init_weights()
    return m


@pytest.fixture()
def face_files(tmp_path):
    import cv2
    paths = []
    for i, face in enumerate(faces(6, seed=4)):
        paths.append(str(tmp_path / f'face_{i}.png'))
        cv2.imwrite(paths[-1], face)
    return paths


def test_save_load_round_trip_answers_the_same(model, face_files, tmp_path):
    gallery = FaceGallery(model, batch_size=4)
    labels = ['a', 'a', 'b', 'c', 'd', 7]
    assert gallery.enrol(face_files, labels) == 0
    path = str(tmp_path / 'sub' / 'g.gallery')
    gallery.save(path)
    assert sorted(os.listdir(tmp_path / 'sub')) == ['g.gallery']  # no temporary file left
    loaded = FaceGallery.load(path, model)
    assert loaded.labels == labels and loaded.files == face_files
    assert torch.equal(loaded.feats, gallery.feats)
    queries = [face_files[3], face_files[0]]
    assert loaded.search(queries, top_k=3) == gallery.search(queries, top_k=3)
    best = loaded.search(queries, top_k=1)
    assert [m[0]['label'] for m in best] == ['c', 'a'] and best[0][0]['file'] == face_files[3]
    assert best[0][0]['distance'] == pytest.approx(0.0, abs=1e-3)


def test_load_refuses_another_model_and_other_versions(model, tmp_path):
    gallery = FaceGallery(model)
    gallery.enrol(faces(3), ['x', 'y', 'z'])
    path = str(tmp_path / 'g.gallery')
    gallery.save(path)
    torch.manual_seed(1)
    other = init_model(CONFIG)
    other.init_weights()
    with pytest.raises(ValueError, match=r'g\.gallery: enrolled with another model \(weights differ'):
        FaceGallery.load(path, other)
    flipped = init_model(CONFIG, cfg_options={'test_evaluator.flip_fusion': True})
    flipped.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match='embedding config differ'):
        FaceGallery.load(path, flipped)
    assert len(FaceGallery.load(path, other, check_model=False)) == 3
    state = torch.load(path, weights_only=True)
    for version, word in ((GALLERY_VERSION - 1, 'an older'), (GALLERY_VERSION + 1, 'a newer')):
        torch.save(dict(state, version=version), path)
        with pytest.raises(ValueError, match=f'gallery format version {version} is {word} one'):
            FaceGallery.load(path, model)
    torch.save({'weights': torch.zeros(1)}, path)
    with pytest.raises(ValueError, match='not an lrfr gallery file'):
        FaceGallery.load(path, model)
    with pytest.raises(FileNotFoundError, match='gallery file not found'):
        FaceGallery.load(str(tmp_path / 'none.gallery'), model)


def test_unreadable_images_stop_by_default_or_are_skipped_and_counted(model, face_files, tmp_path):
    bad = str(tmp_path / 'broken.jpg')
    with open(bad, 'wb') as f:
        f.write(b'not a jpeg')
    files = face_files[:2] + [bad] + face_files[2:4]
    gallery = FaceGallery(model, batch_size=2)
    with pytest.raises(FaceImageError, match='broken.jpg'):
        gallery.enrol(files, list('abcde'))
    assert len(gallery) == 0 and gallery.files == []  # a failed enrol adds nothing
    done = []
    assert gallery.enrol(files, list('abcde'), skip_bad=True, progress=done.append) == 1
    assert gallery.labels == ['a', 'b', 'd', 'e'] and gallery.files == face_files[:2] + face_files[2:4]
    assert sum(done) == 4 and len(gallery.feats) == 4


def test_backends_agree_and_faiss_can_be_absent(model, face_files, monkeypatch):
    pytest.importorskip('faiss')
    with_faiss = FaceGallery(model, backend='faiss')
    with_faiss.enrol(face_files, list(range(6)))
    a = with_faiss.search(face_files[:3], top_k=6)
    monkeypatch.setitem(sys.modules, 'faiss', None)
    brute = FaceGallery(model)  # auto: torch when faiss is missing
    brute.enrol(face_files, list(range(6)))
    b = brute.search(face_files[:3], top_k=6)
    assert [m['index'] for m in a[0]][:1] == [m['index'] for m in b[0]][:1] == [0]
    assert np.allclose([m['distance'] for m in a[1]], [m['distance'] for m in b[1]], rtol=1e-3, atol=1e-3)
    assert brute.describe()['backend'] == 'torch'
    with pytest.raises(ImportError, match="faiss is not installed: index kind 'ivf'"):
        FaceGallery(model, index='ivf')


def test_bad_use_raises_clearly(model, tmp_path):
    gallery = FaceGallery(model)
    gallery.enrol(faces(2), [('tuple', 'label'), 'b'])
    with pytest.raises(TypeError, match='only str or int labels can be saved'):
        gallery.save(str(tmp_path / 'g.gallery'))
    with pytest.raises(ValueError, match='top_k must be >= 1'):
        gallery.search(faces(1), top_k=0)


def test_gallery_takes_distance_and_normalisation_from_the_configs_metric(model):
    cosine = init_model(CONFIG, cfg_options={'test_evaluator.distance': 'cosine'})
    cosine.load_state_dict(model.state_dict())
    gallery = FaceGallery(cosine)
    assert gallery.distance == 'cosine' and gallery.l2_normalize
    gallery.enrol(faces(3), ['a', 'b', 'c'])
    assert torch.allclose(gallery.feats.norm(dim=1), torch.ones(3), atol=1e-5)
    assert FaceGallery(model).distance == 'euclidean' and not FaceGallery(model).l2_normalize
    assert FaceGallery(model, distance='cosine').l2_normalize
