"""Partial FC: a margin head whose class centres are sharded across ranks, with sampled negatives.

An et al., "Killing Two Birds with One Stone: Efficient and Robust Training of Face
Recognition CNNs by Partial FC", CVPR 2022 (InsightFace arcface_torch ``partial_fc_v2.py``).
Each of the ``W`` ranks holds ``C / W`` class centres. A step all-gathers the embeddings
and labels of the global batch, computes cosines against its own centres (or a sampled
subset of them: every positive of the global batch plus random negatives, ``sample_rate``
of the shard), applies the margin of a CosFace/ArcFace/AdaFace head to the target logit
found in its shard, and the softmax over all ``C`` classes is assembled by all-reducing
the row maxima and exp-sums (:class:`DistCrossEntropy`). The distributed steps are
autograd Functions (:class:`AllGatherRows`, :class:`DistCrossEntropy`), as in arcface_torch;
in a single process (or without an initialised process group) they reduce to the plain
head, with optional negative sampling.
"""
import math
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import MMDistributedDataParallel, is_model_wrapper

from lrfr.registry import HOOKS, MODEL_WRAPPERS, MODELS
from .base_head import BaseFaceHead, upcast
from .margin_head import BaseMarginHead


def dist_info() -> Tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_range(num_classes: int, rank: int, world_size: int) -> Tuple[int, int]:
    """``(start, count)`` of the classes rank ``rank`` holds: the first ``C % W`` ranks take one more."""
    base, extra = divmod(num_classes, world_size)
    return base * rank + min(rank, extra), base + (rank < extra)


class AllGatherRows(torch.autograd.Function):
    """Concatenate every rank's ``(n, D)`` tensor (equal ``n``).

    Backward: the gathered gradients are summed over ranks (each rank's loss uses every row), and this
    rank's rows are returned times ``W``, as arcface_torch does: DDP then averages the backbone gradients
    over the ``W`` ranks, so the backbone gets the gradient of the global-batch mean loss, as with a
    replicated head under DDP (and as one process on the global batch).
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        rank, world = dist_info()
        ctx.rank, ctx.n = rank, tensor.size(0)
        parts = [torch.empty_like(tensor) for _ in range(world)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n] * dist.get_world_size()


class DistCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of logits split by columns across ranks.

    ``logits`` ``(N, C_r)`` are this rank's columns; ``target`` ``(N,)`` the column of the
    true class in this rank, ``-1`` where it lies in another rank's shard. The row max
    and the exp-sum are all-reduced, so every rank gets the loss of the full softmax.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        _, world = dist_info()
        row_max = logits.max(dim=1, keepdim=True).values
        if world > 1:
            dist.all_reduce(row_max, op=dist.ReduceOp.MAX)
        probs = (logits - row_max).exp()
        total = probs.sum(dim=1, keepdim=True)
        if world > 1:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        probs = probs / total
        here = target >= 0
        # log-softmax of the target, in log space (a probability of a large-margin row underflows)
        picked = torch.zeros(logits.size(0), dtype=logits.dtype, device=logits.device)
        picked[here] = logits[here, target[here]]
        if world > 1:
            dist.all_reduce(picked, op=dist.ReduceOp.SUM)
        ctx.save_for_backward(probs, target)
        return (total.log().squeeze(1) + row_max.squeeze(1) - picked).mean()

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> Tuple[torch.Tensor, None]:  # type: ignore[override]
        probs, target = ctx.saved_tensors
        grad = probs.clone()
        here = (target >= 0).nonzero().squeeze(1)
        grad[here, target[here]] -= 1.0
        return grad * (grad_loss / probs.size(0)), None


def sample_centres(local_labels: torch.Tensor, num_local: int, num_sample: int,
                   generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Choose ``num_sample`` of the ``num_local`` centres: all positives, then random negatives.

    Args:
        local_labels (Tensor): ``(N,)`` class index within the shard, ``-1`` for other shards.
        num_local (int): centres in the shard.
        num_sample (int): centres to keep (raised to the number of positives if smaller).

    Returns:
        ``(index, labels)``: the kept centres, sorted ``(K,)``, and ``local_labels`` remapped
        to positions in ``index`` (``-1`` kept).
    """
    positives = torch.unique(local_labels[local_labels >= 0])
    num_sample = min(num_local, max(num_sample, positives.numel()))
    score = torch.rand(num_local, generator=generator, device=local_labels.device)
    score[positives] = 2.0  # above every random score: positives are always kept
    index = score.topk(num_sample).indices.sort().values
    labels = local_labels.clone()
    here = labels >= 0
    labels[here] = torch.searchsorted(index, labels[here])
    return index, labels


@MODELS.register_module()
class PartialFCHead(BaseFaceHead):
    """Partial FC (An et al., CVPR 2022) around a CosFace/ArcFace/AdaFace margin.

    The margin head (``margin``, a config of any :class:`BaseMarginHead`) gives the scale
    and the target-logit function; this head holds only its shard of the centres
    (``weight`` ``(C_r, D)``, classes ``[class_start, class_start + C_r)``). AdaFace's
    norm statistics are updated from the whole global batch, as in the full head.

    The rank and world size are those of the default process group when the head is built
    (mmengine's Runner initialises it first). Under several ranks (see docs/model_zoo.md,
    "Partial FC"): the shards must stay out of
    DDP's gradient averaging (``model_wrapper_cfg = dict(type='lrfr.PartialFCDistributedDataParallel')``),
    and a checkpoint, written by rank 0 alone, gets all ``C`` centres only if they were gathered
    first on every rank (``custom_hooks = [dict(type='PartialFCCheckpointHook')]``). The state dict
    of a rank holds the full ``(C, D)`` matrix when gathered, else an empty ``(0, D)`` one (one
    rank alone has no full matrix to give; mmengine's start-of-run broadcast of every state-dict
    entry then passes harmlessly). Loading takes a full ``(C, D)`` matrix and keeps the rank's rows.

    Args:
        num_classes (int): number of identities ``C`` over all ranks.
        in_channels (int): embedding size ``D``.
        margin (dict): the margin head config, e.g. ``dict(type='ArcFaceHead', margin=0.5)``
            (its ``num_classes``/``in_channels`` are filled in; its own classifier is dropped).
        sample_rate (float): share of each shard's centres used per step, in ``(0, 1]``;
            positives of the global batch are always among them. Defaults to 1.0.
        **kwargs: ``loss_weight``, ``init_cfg`` of :class:`BaseFaceHead` (no label smoothing).
    """

    def __init__(self, num_classes: int, in_channels: int, margin: dict, sample_rate: float = 1.0,
                 **kwargs: Any) -> None:
        if kwargs.get('label_smoothing', 0.0):
            raise ValueError('PartialFCHead: label_smoothing is not supported (the softmax is distributed)')
        super().__init__(num_classes, in_channels, **kwargs)
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f'sample_rate must be in (0, 1], got {sample_rate}')
        self.sample_rate = float(sample_rate)
        head = MODELS.build(dict(margin, num_classes=2, in_channels=in_channels))
        if not isinstance(head, BaseMarginHead):
            raise TypeError(f'PartialFCHead: margin must be a margin head (CosFace/ArcFace/AdaFace...), '
                            f'got {type(head).__name__}')
        del head.fc  # its classifier is replaced by the shard
        self.margin = head
        self.rank, self.world_size = dist_info()
        self.class_start, self.num_local = shard_range(num_classes, self.rank, self.world_size)
        if self.num_local < 1:
            raise ValueError(f'PartialFCHead: {num_classes} classes cannot be sharded over {self.world_size} ranks')
        self.weight = nn.Parameter(torch.empty(self.num_local, in_channels))
        # NormLinear's initialisation, so shards and the full head start from the same distribution.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    @property
    def scale(self) -> float:
        return self.margin.scale

    def _cosine(self, feats: torch.Tensor, index: Optional[torch.Tensor]) -> torch.Tensor:
        weight = self.weight if index is None else self.weight[index]
        with torch.autocast(device_type=feats.device.type, enabled=False):
            feats = upcast(feats)
            return F.linear(F.normalize(feats, dim=1), F.normalize(weight.to(feats.dtype), dim=1)).clamp(-1, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Plain logits ``s cos`` ``(N, C_r)`` against this rank's centres (all ``C`` in one process)."""
        return self._cosine(feats, None) * self.scale

    def _gather(self, feats: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.world_size == 1:
            return feats, labels
        return AllGatherRows.apply(feats), AllGatherRows.apply(labels.unsqueeze(1)).squeeze(1)

    def train_logits(self, feats: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Margin and plain logits of the *global* batch against the (sampled) shard, and the local targets.

        Returns ``(margin_logits, plain_logits)`` ``(N_global, K)``; the column targets are in
        ``self._last_targets`` and the kept centres in ``self._last_index`` (for :meth:`loss`).
        """
        feats, labels = self._gather(feats, labels)
        local = labels - self.class_start
        local = torch.where((local >= 0) & (local < self.num_local), local, torch.full_like(local, -1))
        index = None
        if self.sample_rate < 1.0:
            index, local = sample_centres(local, self.num_local, int(self.sample_rate * self.num_local))
        cos = self._cosine(feats, index)
        norms = upcast(feats).norm(dim=1, keepdim=True)
        here = local >= 0
        # The margin of every row (AdaFace's statistics see the whole batch); kept only where the target is here.
        cos_t = cos.gather(1, local.clamp_min(0).unsqueeze(1))
        with torch.autocast(device_type=feats.device.type, enabled=False):
            target = self.margin.target_logit(cos_t, norms)
        rows = here.nonzero().squeeze(1)
        margin_cos = cos.index_put((rows, local[rows]), target[rows, 0])
        self._last_targets, self._last_index = local, index
        return margin_cos * self.scale, cos * self.scale

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Distributed cross-entropy over all ``C`` classes of the global batch, and top-1 accuracy (percent)
        over the centres used this step."""
        self.check_batch(feats, labels)
        margin_logits, plain_logits = self.train_logits(feats, labels)
        targets = self._last_targets
        loss = DistCrossEntropy.apply(margin_logits, targets)
        with torch.no_grad():
            accuracy = self._accuracy(plain_logits, targets)
        return dict(loss_cls=loss * self.loss_weight, accuracy=accuracy)

    def _accuracy(self, plain_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """A row is right when its best logit over every rank is its target's, found in the rank holding it."""
        top = plain_logits.max(dim=1).values
        if self.world_size > 1:
            dist.all_reduce(top, op=dist.ReduceOp.MAX)
        here = targets >= 0
        right = torch.zeros_like(top)
        right[here] = (plain_logits[here, targets[here]] >= top[here]).to(top.dtype)
        if self.world_size > 1:
            dist.all_reduce(right, op=dist.ReduceOp.SUM)
        return right.mean() * 100.0

    def gather_weight(self) -> torch.Tensor:
        """All ``C`` centres ``(C, D)`` from every rank's shard (a collective: every rank must call it)."""
        if self.world_size == 1:
            return self.weight.detach().clone()
        rows = -(-self.num_classes // self.world_size)  # all_gather needs equal sizes: pad to the largest shard
        padded = self.weight.detach().new_zeros(rows, self.in_channels)
        padded[:self.num_local] = self.weight.detach()
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded)
        return torch.cat([part[:shard_range(self.num_classes, r, self.world_size)[1]]
                          for r, part in enumerate(parts)])

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.world_size > 1:
            gathered = getattr(self, '_gathered', None)
            destination[prefix + 'weight'] = (gathered if gathered is not None
                                              else self.weight.detach().new_zeros(0, self.in_channels))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        key = prefix + 'weight'
        value = state_dict.get(key)
        if value is not None and self.world_size > 1:
            if value.shape[0] != self.num_classes:
                raise ValueError(f'PartialFCHead: {key} holds {value.shape[0]} centres, expected all '
                                 f'{self.num_classes} (a multi-rank checkpoint saved without PartialFCCheckpointHook '
                                 f'has none)')
            state_dict = dict(state_dict)
            state_dict[key] = value[self.class_start:self.class_start + self.num_local]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, shard=[{self.class_start}, {self.class_start + self.num_local}), '
                f'world_size={self.world_size}, sample_rate={self.sample_rate}')


def ddp_ignore_sharded(model: nn.Module) -> List[str]:
    """Mark the parameters of every :class:`PartialFCHead` in ``model`` as ignored by DDP
    (``_ddp_params_and_buffers_to_ignore``, read by ``DistributedDataParallel`` at wrap time); returns their names."""
    names = [f'{prefix}.{name}' if prefix else name
             for prefix, module in model.named_modules() if isinstance(module, PartialFCHead)
             for name, _ in module.named_parameters()]
    ignored = list(getattr(model, '_ddp_params_and_buffers_to_ignore', []))
    model._ddp_params_and_buffers_to_ignore = ignored + [n for n in names if n not in ignored]
    return names


@MODEL_WRAPPERS.register_module()
class PartialFCDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper with every :class:`PartialFCHead` shard left out of the gradient averaging
    (``model_wrapper_cfg = dict(type='lrfr.PartialFCDistributedDataParallel')``)."""

    def __init__(self, module: nn.Module, **kwargs: Any) -> None:
        ddp_ignore_sharded(module)
        super().__init__(module=module, **kwargs)


@HOOKS.register_module()
class PartialFCCheckpointHook(Hook):
    """Gather every :class:`PartialFCHead`'s centres on all ranks just before a checkpoint is saved.

    mmengine saves checkpoints on rank 0 only, where no collective can run; this hook (priority
    ``LOW``, ahead of ``CheckpointHook``'s ``VERY_LOW``) gathers the full ``(C, D)`` matrices on
    the iterations and epochs where the ``CheckpointHook`` will save, and after each validation when it keeps
    the best checkpoint (``save_best``), so rank 0's state dict holds them, and drops them after. A no-op in
    one process.
    """

    priority = 'LOW'

    def _heads(self, runner) -> List[PartialFCHead]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        return [m for m in model.modules() if isinstance(m, PartialFCHead) and m.world_size > 1]

    def _gather(self, runner) -> None:
        for head in self._heads(runner):
            head._gathered = head.gather_weight()

    def _release(self, runner) -> None:
        for head in self._heads(runner):
            head._gathered = None

    def _checkpoint_hook(self, runner) -> Optional[CheckpointHook]:
        return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        self._release(runner)
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and not ckpt.by_epoch and (
                self.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_iter(runner))):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        self._release(runner)
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and ckpt.by_epoch and (
                self.every_n_epochs(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_epoch(runner))):
            self._gather(runner)

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        # CheckpointHook (VERY_LOW) may save a best checkpoint right after this hook: every rank gathers, since
        # only rank 0 knows whether the metric improved (released at the next training iteration)
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and ckpt.save_best:
            self._gather(runner)

    def before_train_epoch(self, runner) -> None:
        self._release(runner)

    def after_train(self, runner) -> None:
        self._release(runner)


__all__ = ['PartialFCHead', 'PartialFCDistributedDataParallel', 'PartialFCCheckpointHook', 'AllGatherRows',
           'DistCrossEntropy', 'sample_centres', 'shard_range', 'ddp_ignore_sharded', 'dist_info']
