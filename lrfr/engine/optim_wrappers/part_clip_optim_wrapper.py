"""Gradient-norm clipping per part of the model (the SR head apart from the FR network)."""
import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from torch import nn

from lrfr.engine.hooks.runtime_info_hook import deferred_scalars
from lrfr.errors import LRFRError
from lrfr.registry import OPTIM_WRAPPERS

REST = 'rest'  # the parameters in no named part


@OPTIM_WRAPPERS.register_module()
class PartClipOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` whose gradient-norm clipping can treat sub-modules separately.

    ``clip_grad=dict(max_norm=40, parts=dict(sr=dict(max_norm=10)))`` clips the gradient of the sub-module
    ``sr`` to norm 10 on its own and the gradient of every other parameter to norm 40, instead of one global
    norm over both. Why: in SR-FR joint training (LRFR paper eq. 3/4) the SR term is a per-image Euclidean
    loss over every pixel; even at weight 0.003 its gradient is two orders of magnitude larger than the FR
    gradient while the SR head is young (norms of 700-3,700 against 10-20, docs/csri.md "Training
    stability"). A global clip then shrinks the FR step by the same factor, and clipping becomes the FR
    optimiser. Clipping the SR head alone is VDSR's own recipe (Kim et al., CVPR 2016, adjustable gradient
    clipping), and the FR network keeps its full step with a clip that is only a safety net.

    Without ``parts`` this is exactly ``OptimWrapper``. Each part is a dotted sub-module name of the model
    (under a DDP wrapper, of the wrapped model); the names are resolved on the first ``optim_context`` (every
    ``train_step`` enters it), or by :meth:`bind_parts`. A part's dict holds ``clip_grad_norm_`` arguments
    (``max_norm``, optionally ``norm_type``) and inherits the top level's ``norm_type``. The norms are logged
    as ``grad_norm`` (the rest) and ``grad_norm_<part>``, and kept as tensors in ``last_grad_norms``.

    No host-device synchronisation: clipping stays on the device (``clip_grad_norm_`` without
    ``error_if_nonfinite``), and the norms reach the message hub through
    :func:`~lrfr.engine.hooks.deferred_scalars`, fetched with the losses at the logging iterations by
    ``DeferredRuntimeInfoHook`` (the default runtime's); every step's norm is logged, as mmengine's
    ``OptimWrapper`` logs it.

    ``dtype='bfloat16'`` runs the forward pass under ``torch.autocast`` on the model's device type, without a
    ``GradScaler`` (bf16 has fp32's exponent range: nothing to scale, and the scaler's unscale/inf check/update
    would cost a sync per step). fp16 needs the scaler: :class:`AmpPartClipOptimWrapper`.

    Args:
        optimizer (torch.optim.Optimizer): the optimiser.
        accumulative_counts (int): gradient accumulation steps, as in ``OptimWrapper``.
        clip_grad (dict, optional): ``clip_grad_norm_`` arguments, plus ``parts``.
        dtype (str | torch.dtype, optional): ``'bfloat16'`` for bf16 autocast; None (default): no autocast.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, accumulative_counts: int = 1,
                 clip_grad: Optional[dict] = None, dtype: Union[str, torch.dtype, None] = None) -> None:
        clip_grad = copy.deepcopy(dict(clip_grad)) if clip_grad else None
        parts = clip_grad.pop('parts', None) if clip_grad else None
        self.part_clip: Dict[str, dict] = self._check_parts(parts, clip_grad)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise LRFRError(f'PartClipOptimWrapper: dtype must be None or bfloat16 (autocast without a loss '
                            f'scaler), got {dtype!r}; float16 needs one: type="AmpPartClipOptimWrapper"')
        self.autocast_dtype: Optional[torch.dtype] = dtype
        super().__init__(optimizer, accumulative_counts=accumulative_counts, clip_grad=clip_grad)
        self._part_params: Optional[Dict[str, List[nn.Parameter]]] = None
        # the norms of the last clipped step, as tensors (for analysis tools; reading them syncs)
        self.last_grad_norms: Dict[str, torch.Tensor] = {}

    @staticmethod
    def _check_parts(parts: Optional[dict], clip_grad: Optional[dict]) -> Dict[str, dict]:
        if not parts:
            return {}
        if not isinstance(parts, dict):
            raise LRFRError(f'clip_grad.parts must be a dict of sub-module name -> clip arguments, got {parts!r}')
        if clip_grad.get('type', 'norm') != 'norm' or 'max_norm' not in clip_grad:
            raise LRFRError('clip_grad.parts needs norm clipping with a top-level max_norm for the other '
                            f'parameters, got clip_grad={clip_grad!r}')
        checked = {}
        for name, cfg in parts.items():
            if name == REST:
                raise LRFRError(f"clip_grad.parts: '{REST}' names the parameters outside every part; "
                                'set its clipping with the top-level max_norm')
            if not isinstance(cfg, dict) or not cfg.get('max_norm', 0) > 0:
                raise LRFRError(f"clip_grad.parts['{name}'] needs a positive max_norm, got {cfg!r}")
            checked[name] = dict(norm_type=clip_grad.get('norm_type', 2.0), **cfg)
        return checked

    def bind_parts(self, model: nn.Module) -> None:
        """Sort the optimiser's parameters into the named parts of ``model`` and the rest."""
        params = [p for group in self.optimizer.param_groups for p in group['params']]
        self._part_params = split_by_part(model, params, list(self.part_clip))

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        """mmengine's context (gradient accumulation), after binding the parts; bf16 autocast on the device
        type of the model's parameters when ``dtype`` is set."""
        if self.part_clip and self._part_params is None:
            self.bind_parts(model)
        with super().optim_context(model):
            if self.autocast_dtype is None:
                yield
            else:
                device_type = next(model.parameters()).device.type
                with torch.autocast(device_type=device_type, dtype=self.autocast_dtype):
                    yield

    def _clip_grad(self) -> None:
        """Clip each part (and the rest) to its own norm; keep the norms in ``last_grad_norms`` and log them."""
        if self.part_clip and self._part_params is None:
            raise LRFRError('PartClipOptimWrapper: clip_grad.parts are not bound to a model; step inside '
                            'optim_context(model) (as train_step does) or call bind_parts(model) first')
        groups = self._part_params or {
            REST: [p for group in self.optimizer.param_groups for p in group['params']]}
        self.last_grad_norms = {}
        for name, params in groups.items():
            params = [p for p in params if p.requires_grad and p.grad is not None]
            if not params:
                continue
            kwargs = self.clip_grad_kwargs if name == REST else self.part_clip[name]
            norm = self.clip_func(params, **kwargs)
            if norm is None:  # clip_grad_value_ returns nothing
                continue
            key = self.grad_name if name == REST else f'{self.grad_name}_{name}'
            self.last_grad_norms[key] = norm.detach()
            deferred_scalars(self.message_hub).put(f'train/{key}', norm)  # no sync: fetched when logged


@OPTIM_WRAPPERS.register_module()
class AmpPartClipOptimWrapper(AmpOptimWrapper, PartClipOptimWrapper):
    """fp16 mixed precision (mmengine's ``AmpOptimWrapper``: autocast and a ``GradScaler``, whose step syncs
    once per step) with :class:`PartClipOptimWrapper`'s per-part clipping of the unscaled gradients.

    Arguments: ``AmpOptimWrapper``'s (``loss_scale``, ``dtype``) and ``PartClipOptimWrapper``'s ``clip_grad``
    with ``parts``. For bf16 use ``PartClipOptimWrapper(dtype='bfloat16')``: no scaler.
    """


def split_by_part(model: nn.Module, params: List[nn.Parameter], parts: List[str]) -> Dict[str, List[nn.Parameter]]:
    """``params`` sorted by the sub-module of ``model`` (dotted names ``parts``) that owns them, in their order;
    parameters of no part go under ``'rest'``. A DDP-style wrapper is looked through."""
    if is_model_wrapper(model):
        model = model.module
    owner: Dict[int, str] = {}
    for name in parts:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            children = ', '.join(n for n, _ in model.named_children())
            raise LRFRError(f"clip_grad.parts: {type(model).__name__} has no sub-module '{name}' "
                            f'(its children: {children})') from None
        for param in module.parameters():
            owner.setdefault(id(param), name)
    groups: Dict[str, List[nn.Parameter]] = {REST: [], **{name: [] for name in parts}}
    for param in params:
        groups[owner.get(id(param), REST)].append(param)
    return groups
