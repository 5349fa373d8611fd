"""lrfr.apis inference: embeddings through the config's test pipeline, a gallery that identifies its faces."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from lrfr.apis import FaceGallery, extract_embeddings, init_model

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')


@pytest.fixture(scope='module')
def model():
    return init_model(CONFIG)


def _faces(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (30 + i, 24 + i, 3), dtype=np.uint8) for i in range(n)]


def test_embeddings_equal_the_models_prediction_on_the_pipeline_output(model, tmp_path):
    faces = _faces(3)
    path = str(tmp_path / 'face.png')
    cv2.imwrite(path, faces[0])
    feats = extract_embeddings(model, [path] + faces[1:], batch_size=2)
    assert feats.shape == (3, 128) and feats.dtype == torch.float32
    # by hand: resize to the size the config's test pipeline names, normalise, SR then FR
    from lrfr.datasets.transforms.degradations import resize
    size = next(t['size'] for t in model.cfg.test_dataloader.dataset.pipeline if t['type'] == 'ResizeFace')
    pre = model.cfg.model.data_preprocessor
    lr = torch.from_numpy(resize(faces[1], tuple(size), 'bicubic')).permute(2, 0, 1)[None].float()
    expected = model.embed((lr - pre.mean) / pre.std)[0]
    assert torch.allclose(feats[1], expected, atol=1e-5)
    assert torch.allclose(extract_embeddings(model, faces[1:2]), feats[1:2], atol=1e-6)  # batching-invariant


def test_gallery_identifies_enrolled_faces(model, tmp_path):
    faces = _faces(4, seed=1)
    gallery = FaceGallery(model)
    gallery.enrol(faces, ['a', 'b', 'c', 'd'])
    results = gallery.identify([faces[2], faces[0]], top_k=2)
    assert [r[0][0] for r in results] == ['c', 'a']
    assert results[0][0][1] == pytest.approx(0.0, abs=1e-4)
    assert results[0][0][1] <= results[0][1][1]
    cosine = FaceGallery(model, distance='cosine')
    cosine.enrol(faces, list(range(4)))
    assert cosine.identify([faces[3]], top_k=1)[0][0][0] == 3


def test_bad_use_raises_clearly(model):
    with pytest.raises(RuntimeError, match='empty'):
        FaceGallery(model).identify(_faces(1))
    with pytest.raises(ValueError, match='labels'):
        FaceGallery(model).enrol(_faces(2), ['a'])
    with pytest.raises(ValueError, match='distance'):
        FaceGallery(model, distance='manhattan')
