"""Inference: build a model from a config and checkpoint, embed face images, enrol a gallery, identify faces.

    >>> from lrfr.apis import FaceGallery, extract_embeddings, init_model
    >>> model = init_model('configs/demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py',
    ...                    'work_dirs/csri_vdsr-centreface_1xb32_demo-pairs-native/final.pth')
    >>> gallery = FaceGallery(model)
    >>> gallery.enrol(['alice_1.jpg', 'bob_1.jpg'], ['alice', 'bob'])
    >>> gallery.identify(['unknown.jpg'], top_k=1)
    [[('alice', 7.31)]]

Images go through the config's test pipeline (the same resizing the benchmark used), so a deployed model sees
faces exactly as it was evaluated; the embedding is the model's ``predict`` output (for CSRI: SR then FR).
"""
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from lrfr import compat
from lrfr.evaluation.metrics import sample_embedding
from lrfr.registry import MODELS
from .checkpoint import load_checkpoint_strict

ImageLike = Union[str, np.ndarray]


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the config's model in eval mode on ``device``, with ``checkpoint`` loaded strictly if given.

    The config is kept as ``model.cfg`` (its test pipeline prepares images for :func:`extract_embeddings`).
    Like the tools, this applies the stack fixes of :func:`lrfr.compat.apply` first (torch >= 2.6 must read
    mmengine's checkpoints; mmpretrain models must import without mmcv's noise).
    """
    compat.apply()
    cfg = Config.fromfile(config) if isinstance(config, str) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'lrfr'))
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint_strict(model, checkpoint, config_name=str(config) if isinstance(config, str) else None)
    model.cfg = cfg
    return model.to(device).eval()


def _test_pipeline(model: torch.nn.Module) -> Compose:
    cfg = getattr(model, 'cfg', None)
    loader = cfg.get('test_dataloader') if cfg is not None else None
    if not loader:
        raise ValueError('the model has no config with a test_dataloader (build it with lrfr.apis.init_model) '
                         'to take the test pipeline from')
    return Compose(loader['dataset']['pipeline'])


@torch.no_grad()
def extract_embeddings(model: torch.nn.Module, images: Sequence[ImageLike], batch_size: int = 32,
                       flip_fusion: Optional[bool] = None, l2_normalize: bool = False) -> torch.Tensor:
    """Embed face images (file paths, or HWC uint8 BGR arrays) with the model's test pipeline.

    Args:
        model: a model from :func:`init_model`.
        images (Sequence[str | np.ndarray]): faces, any size (the pipeline resizes them).
        batch_size (int): images per forward pass. Defaults to 32.
        flip_fusion (bool, optional): average with the mirrored image's embedding; defaults to the model's
            ``flip_test``.
        l2_normalize (bool): unit-length embeddings. Defaults to False (TinyFace matches raw features).

    Returns:
        torch.Tensor: ``(N, D)`` float32 embeddings on the CPU, in input order.
    """
    pipeline = _test_pipeline(model)
    if flip_fusion is None:
        flip_fusion = bool(getattr(model, 'flip_test', False))
    feats: List[torch.Tensor] = []
    for start in range(0, len(images), batch_size):
        batch = []
        for i, image in enumerate(images[start:start + batch_size], start):
            item = dict(img_path=image) if isinstance(image, str) else dict(img=image, img_path=f'<image {i}>')
            batch.append(pipeline(dict(item, sample_idx=i)))
        for sample in model.test_step(pseudo_collate(batch)):
            feats.append(sample_embedding(sample.to_dict(), flip_fusion, l2_normalize, 'extract_embeddings'))
    if not feats:
        raise ValueError('extract_embeddings: no images given')
    return torch.stack(feats)


class FaceGallery:
    """A 1:N gallery: enrol labelled faces, then rank them for each query face (closest first).

    Args:
        model: a model from :func:`init_model`.
        distance (str): ``'euclidean'`` (the TinyFace protocol) or ``'cosine'`` (``1 - cos``).
        batch_size (int): images per forward pass. Defaults to 32.
    """

    def __init__(self, model: torch.nn.Module, distance: str = 'euclidean', batch_size: int = 32) -> None:
        if distance not in ('euclidean', 'cosine'):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
        self.model = model
        self.distance = distance
        self.batch_size = batch_size
        self.feats = torch.empty(0)
        self.labels: List[Any] = []

    def __len__(self) -> int:
        return len(self.labels)

    def _embed(self, images: Sequence[ImageLike]) -> torch.Tensor:
        return extract_embeddings(self.model, images, self.batch_size, l2_normalize=self.distance == 'cosine')

    def enrol(self, images: Sequence[ImageLike], labels: Sequence[Any]) -> None:
        """Add faces with their identities (any hashable labels; one identity may have several faces)."""
        if len(images) != len(labels):
            raise ValueError(f'enrol: {len(images)} images but {len(labels)} labels')
        feats = self._embed(images)
        self.feats = feats if len(self) == 0 else torch.cat([self.feats, feats])
        self.labels.extend(labels)

    def identify(self, images: Sequence[ImageLike], top_k: int = 5) -> List[List[Tuple[Any, float]]]:
        """For each query face, the ``top_k`` closest enrolled faces as ``(label, distance)``, closest first."""
        if len(self) == 0:
            raise RuntimeError('identify: the gallery is empty; enrol faces first')
        queries = self._embed(images)
        if self.distance == 'euclidean':
            dist = torch.cdist(queries.double(), self.feats.double())
        else:
            dist = 1 - queries.double() @ self.feats.double().T
        k = min(top_k, len(self))
        # stable sort: equal distances keep enrolment order, like the benchmark's tie rule
        order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
        return [[(self.labels[j], float(dist[q, j])) for j in row.tolist()] for q, row in enumerate(order)]
