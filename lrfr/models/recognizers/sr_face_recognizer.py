"""SR then FR in one model: the paper's SR-FR independent and joint learning (§3, eq. 3) and CSRI (eq. 4)."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.structures import DataSample
from torch import nn

from lrfr.registry import MODELS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN
from lrfr.models.builder import ModuleCfg, build_part
from .face_recognizer import FaceRecognizer, gather_labels


def branch_of(sample: DataSample) -> str:
    """The branch a data sample belongs to; samples without one count as synthetic/auxiliary."""
    return sample.metainfo.get('branch', BRANCH_SYN)


def index_tensor(indices: List[int], device: torch.device) -> torch.Tensor:
    """Batch positions as a long tensor on ``device``, copied from pinned memory without blocking
    (``torch.tensor(..., device=cuda)`` copies from pageable memory, which waits for the GPU's queue to drain:
    a host synchronisation per training step)."""
    pinned = torch.device(device).type == 'cuda'
    return torch.tensor(indices, dtype=torch.long, pin_memory=pinned).to(device, non_blocking=True)


@MODELS.register_module()
class SRFaceRecognizer(FaceRecognizer):
    """Super-resolve the low-res face, then recognise it: ``embedding = FR(SR(lr))``.

    Training loss (Cheng et al., ACCV 2018):

    * joint learning, eq. (3): ``L = L_fr + lambda_sr * L_sr``, with ``L_sr = ||SR(lr) - hr||^2`` on samples
      that carry an HR target (``hr_img``, i.e. synthetic LR/HR pairs);
    * independent learning (the paper's "SR" rows of Table 5, Fig. 5b): ``freeze_sr=True`` keeps an SR head
      trained on its own (load it with the SR head's ``init_cfg``) fixed, and only FR learns;
    * with a ``native_head`` this is CSRI, eq. (4): ``L = L_fr_syn + L_fr_nat + lambda_sr * L_sr``; each
      sample's ``branch`` picks its classifier (one per label space) while SR and FR are shared. The losses
      are logged apart as ``syn_*`` / ``nat_*`` / ``loss_sr``.

    The whole batch goes through SR and FR in one pass and is split by branch only for the heads: the paper's
    nets (VDSR, CentreFace) have no batch statistics, so this equals two passes and runs faster. (With
    BatchNorm backbones the statistics are then those of the mixed batch.)

    Args:
        sr (dict | nn.Module): SR head, LR ``(N, 3, h, w)`` -> ``(N, 3, H, W)`` at the FR input size.
        backbone, neck: as in :class:`FaceRecognizer`.
        head (dict | nn.Module, optional): classifier of the synthetic/auxiliary branch (or the only one).
        native_head (dict | nn.Module, optional): classifier of the native branch (CSRI).
        sr_loss (dict | nn.Module): pixel loss. Defaults to ``EuclideanLoss`` (caffe's, as VDSR/CSRI).
        lambda_sr (float): weight of the SR loss; 0.003 in the paper (by cross-validation).
        freeze_sr (bool): keep the SR head fixed (independent SR-FR learning).
        predict_sr (bool): in predict, also store the SR output as ``pred_img`` (for PSNR/SSIM).
        data_preprocessor, flip_test, init_cfg: as in :class:`FaceRecognizer`.

    Example:
        >>> model = dict(type='SRFaceRecognizer', sr=dict(type='VDSR', output_size=(112, 96)),
        ...              backbone=dict(type='CentreFaceNet'),
        ...              head=dict(type='SoftmaxHead', in_channels=512, num_classes=10177), lambda_sr=0.003)
    """

    def __init__(self,
                 sr: ModuleCfg,
                 backbone: ModuleCfg,
                 head: Optional[ModuleCfg] = None,
                 neck: Optional[ModuleCfg] = None,
                 native_head: Optional[ModuleCfg] = None,
                 sr_loss: ModuleCfg = dict(type='EuclideanLoss'),
                 lambda_sr: float = 0.003,
                 freeze_sr: bool = False,
                 predict_sr: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 flip_test: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, head=head, neck=neck, data_preprocessor=data_preprocessor,
                         flip_test=flip_test, init_cfg=init_cfg)
        if lambda_sr < 0:
            raise ValueError(f'lambda_sr must be >= 0, got {lambda_sr}')
        self.sr = build_part(sr)
        self.native_head = build_part(native_head)
        self.sr_loss = build_part(sr_loss)
        self.lambda_sr = lambda_sr
        self.freeze_sr = freeze_sr
        self.predict_sr = predict_sr
        if freeze_sr:
            self.sr.requires_grad_(False)

    def train(self, mode: bool = True) -> 'SRFaceRecognizer':
        super().train(mode)
        if self.freeze_sr:
            self.sr.eval()
        return self

    # -- embedding ---------------------------------------------------------
    def fr_input(self, inputs: torch.Tensor) -> torch.Tensor:
        """Super-resolve the LR faces to the FR input size (without gradients when SR is frozen)."""
        if self.freeze_sr:
            with torch.no_grad():
                return self.sr(inputs)
        return self.sr(inputs)

    # -- training ----------------------------------------------------------
    def head_for(self, branch: str) -> nn.Module:
        """The classifier of a branch: ``native_head`` for native samples when there is one, else ``head``."""
        if branch == BRANCH_NAT and self.native_head is not None:
            return self.native_head
        if self.head is None:
            raise RuntimeError(f'{type(self).__name__} has no head: it cannot compute a training loss')
        return self.head

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        sr_imgs = self.fr_input(inputs)
        feats = self.embed_images(sr_imgs)
        labels = gather_labels(data_samples).to(inputs.device)
        branches = [branch_of(s) for s in data_samples]
        losses: Dict[str, torch.Tensor] = {}
        prefix_by_branch = self.native_head is not None
        for branch in dict.fromkeys(branches):  # branches in order of first appearance
            idx = index_tensor([i for i, b in enumerate(branches) if b == branch], inputs.device)
            branch_losses = self.head_for(branch).loss(feats[idx], labels[idx])
            prefix = f'{branch}_' if prefix_by_branch else ''
            losses.update({prefix + k: v for k, v in branch_losses.items()})
        with_hr = [i for i, s in enumerate(data_samples) if 'hr_img' in s]
        if with_hr and not self.freeze_sr and self.lambda_sr > 0:
            hr = torch.stack([data_samples[i].hr_img for i in with_hr])
            idx = index_tensor(with_hr, inputs.device)
            losses['loss_sr'] = self.lambda_sr * self.sr_loss(sr_imgs[idx], hr)
        return losses

    def annotate(self, sample: DataSample, fr_image: torch.Tensor) -> None:
        if self.predict_sr:
            sample.pred_img = fr_image


@MODELS.register_module()
class CSRI(SRFaceRecognizer):
    """Complement Super-Resolution and Identity joint learning (Cheng et al., ACCV 2018, §3, Fig. 2).

    An :class:`SRFaceRecognizer` with two branches sharing SR and FR: the synthetic branch (auxiliary LR with
    HR target and identity, classifier ``head``) and the native branch (native LR with identity only,
    classifier ``native_head``). ``L = L_fr_syn + L_fr_nat + lambda_sr * L_sr`` (eq. 4), ``lambda_sr=0.003``.
    Stage 2 initialises from a stage-1 :class:`SRFaceRecognizer` checkpoint (same ``sr``/``backbone``/``head``
    names). Deployment: SR then FR embedding, Euclidean matching.
    """

    def __init__(self, *args, native_head: Optional[ModuleCfg] = None, **kwargs) -> None:
        if native_head is None:
            raise ValueError('CSRI needs a native_head (the classifier of the native LR identities); '
                             'without it use SRFaceRecognizer')
        super().__init__(*args, native_head=native_head, **kwargs)
