"""Inference: build a model from a config and checkpoint, embed face images (the gallery is in gallery.py).

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
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope

from lrfr import compat
from lrfr.datasets.transforms.loading import FaceImageError
from lrfr.evaluation.metrics import sample_embedding
from lrfr.registry import MODELS
from .checkpoint import load_checkpoint_strict

ImageLike = Union[str, np.ndarray]


def init_model(config: Union[str, Config], checkpoint: Optional[str] = None, device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the config's model in eval mode on ``device``, with ``checkpoint`` loaded strictly if given.

    The config is kept as ``model.cfg`` (its test pipeline prepares images for :func:`extract_embeddings`),
    the checkpoint path as ``model.checkpoint_path``.
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
    # galleries record which weights made their embeddings (absolute: a search may run elsewhere)
    model.checkpoint_path = osp.abspath(checkpoint) if checkpoint else None
    return model.to(device).eval()


def _test_pipeline(model: torch.nn.Module) -> Compose:
    cfg = getattr(model, 'cfg', None)
    loader = cfg.get('test_dataloader') if cfg is not None else None
    if not loader:
        raise ValueError('the model has no config with a test_dataloader (build it with lrfr.apis.init_model) '
                         'to take the test pipeline from')
    return Compose(loader['dataset']['pipeline'])


def test_pipeline(model: torch.nn.Module) -> Compose:
    """The model config's test pipeline (how ``tools/test.py`` prepared the faces it was evaluated on)."""
    return _test_pipeline(model)


@torch.no_grad()
def iter_embeddings(model: torch.nn.Module, images: Sequence[ImageLike], batch_size: int = 32,
                    flip_fusion: Optional[bool] = None, l2_normalize: bool = False,
                    skip_bad: bool = False) -> Iterator[Tuple[List[int], torch.Tensor]]:
    """Embed faces batch by batch: yields ``(positions in images, (n, D) embeddings)`` per batch.

    Only one batch of decoded images is held at a time, so a gallery of any size streams through in bounded
    memory. An unreadable image raises :class:`~lrfr.datasets.transforms.loading.FaceImageError` naming the
    file, or, with ``skip_bad``, is left out (its position is missing from the yielded positions; the
    caller counts them). Arguments as in :func:`extract_embeddings`.
    """
    pipeline = _test_pipeline(model)
    if flip_fusion is None:
        flip_fusion = bool(getattr(model, 'flip_test', False))
    for start in range(0, len(images), batch_size):
        batch, kept = [], []
        for i, image in enumerate(images[start:start + batch_size], start):
            item = dict(img_path=image) if isinstance(image, str) else dict(img=image, img_path=f'<image {i}>')
            try:
                batch.append(pipeline(dict(item, sample_idx=i)))
            except FaceImageError:
                if not skip_bad:
                    raise
                continue
            kept.append(i)
        if not batch:
            continue
        feats = [sample_embedding(sample.to_dict(), flip_fusion, l2_normalize, 'extract_embeddings')
                 for sample in model.test_step(pseudo_collate(batch))]
        yield kept, torch.stack(feats)


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
    feats = [f for _, f in iter_embeddings(model, images, batch_size, flip_fusion, l2_normalize)]
    if not feats:
        raise ValueError('extract_embeddings: no images given')
    return torch.cat(feats)
