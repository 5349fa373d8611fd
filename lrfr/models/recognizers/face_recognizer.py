"""Face recogniser: image -> backbone (-> neck) -> embedding; a head adds the training loss."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.structures import DataSample
from torch import nn

from lrfr.models.builder import ModuleCfg, build_part
from lrfr.registry import MODELS
from .base import LRFRBaseModel, new_samples

def gather_labels(data_samples: List[DataSample]) -> torch.Tensor:
    """Identity labels of a batch as a ``(N,)`` long tensor."""
    if any('gt_label' not in s for s in data_samples):
        raise KeyError('every training data sample needs a gt_label; '
                       'check that the dataset yields labels and PackFaceInputs keeps them')
    return torch.cat([s.gt_label for s in data_samples]).long()


@MODELS.register_module()
class FaceRecognizer(LRFRBaseModel):
    """A face recognition model: the embedding is what is matched at test time.

    ``forward(mode=...)`` follows mmengine: ``'loss'`` returns a dict of losses
    from the classification head (softmax, centre loss, margins ...), ``'predict'``
    returns data samples with an ``embedding`` field (and ``embedding_flip``, the
    embedding of the mirrored image, when ``flip_test`` is set; the metric fuses
    them), ``'tensor'`` returns the raw embedding batch.

    Args:
        backbone (dict | nn.Module): image ``(N, 3, H, W)`` -> embedding ``(N, D)``,
            or feature maps when a ``neck`` follows (e.g. ``mmpretrain.ResNet``).
        head (dict | nn.Module, optional): classification head with
            ``loss(embeddings, labels) -> dict``; needed for training only.
        neck (dict | nn.Module, optional): feature maps -> embedding.
        data_preprocessor (dict, optional): defaults to ``FaceDataPreprocessor``.
        flip_test (bool): in predict, also embed the horizontally flipped image.
        init_cfg (dict, optional): mmengine initialisation config.

    Example:
        >>> model = dict(type='FaceRecognizer',
        ...              backbone=dict(type='CentreFaceNet', embed_dim=512),
        ...              head=dict(type='SoftmaxHead', in_channels=512, num_classes=2570))
    """

    def __init__(self,
                 backbone: ModuleCfg,
                 head: Optional[ModuleCfg] = None,
                 neck: Optional[ModuleCfg] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 flip_test: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_part(backbone)
        self.neck = build_part(neck)
        self.head = build_part(head)
        self.flip_test = flip_test

    # -- embedding ---------------------------------------------------------
    def fr_input(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised images -> what the FR backbone sees. Subclasses put an SR step here."""
        return inputs

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised images -> embeddings ``(N, D)``."""
        return self.embed_images(self.fr_input(inputs))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """Run backbone (and neck) on images already at the FR input size."""
        feats = self.backbone(images)
        if self.neck is not None:
            feats = self.neck(feats)
        elif isinstance(feats, (tuple, list)):
            raise TypeError(
                f'{type(self.backbone).__name__} returns feature maps; add a neck '
                "(e.g. neck=dict(type='EmbeddingNeck', ...)) to turn them into an embedding")
        return feats

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Alias of :meth:`embed`, the OpenMMLab name."""
        return self.embed(inputs)

    # -- modes -------------------------------------------------------------
    def tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.embed(inputs)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        if self.head is None:
            raise RuntimeError(f'{type(self).__name__} has no head: it cannot compute a training loss')
        return self.head.loss(self.embed(inputs), gather_labels(data_samples).to(inputs.device))

    @torch.no_grad()
    def predict(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        images = self.fr_input(inputs)
        embeddings = self.embed_images(images)
        flipped = self.embed_images(images.flip(-1)) if self.flip_test else None
        data_samples = new_samples(data_samples, inputs.size(0))
        for i, sample in enumerate(data_samples):
            sample.embedding = embeddings[i]
            if flipped is not None:
                sample.embedding_flip = flipped[i]
            self.annotate(sample, images[i])
        return data_samples

    def annotate(self, sample: DataSample, fr_image: torch.Tensor) -> None:
        """Add model-specific predictions to a sample (the SR output for SR models)."""
