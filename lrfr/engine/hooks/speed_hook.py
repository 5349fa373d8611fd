"""GPU speed switches applied to the model the Runner built: channels-last memory format and ``torch.compile``
of the network parts (``tools/train.py --channels-last --compile``)."""
import inspect
from typing import Any, Dict, Sequence, Union

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import nn

from lrfr.errors import ConfigError
from lrfr.registry import HOOKS

#: Sub-modules of lrfr's recognisers that are plain tensor-in, tensor-out networks (docs/design.md,
#: "Interfaces"): the SR head, the FR backbone and the optional neck.
SPEED_PARTS = ('sr', 'backbone', 'neck')


def compile_kwargs(compile: Union[bool, Dict[str, Any]]) -> Dict[str, Any]:
    """``torch.compile`` keyword arguments from the hook's ``compile`` setting: ``False`` -> none (no
    compiling; the caller checks), ``True`` -> ``{}`` (inductor, default mode), a dict -> itself.

    Raises:
        ConfigError: ``compile`` is neither a bool nor a dict, or names an argument ``torch.compile`` does not
            take (checked here, not at the first forward pass).
    """
    if isinstance(compile, bool):
        return {}
    if not isinstance(compile, dict):
        raise ConfigError(f'TrainSpeedHook: compile must be a bool or a dict of torch.compile arguments, '
                          f'got {compile!r}')
    accepted = set(inspect.signature(torch.compile).parameters) - {'model'}
    unknown = sorted(set(compile) - accepted)
    if unknown:
        raise ConfigError(f'TrainSpeedHook: compile={compile!r}: torch.compile takes no {unknown} '
                          f'(it takes {sorted(accepted)})')
    return dict(compile)


@HOOKS.register_module()
class TrainSpeedHook(Hook):
    """Convert the model to the channels-last memory format and compile its network parts in place.

    **Channels-last** (``channels_last=True``): every 4-D parameter and buffer of the model goes to
    ``torch.channels_last`` (NHWC strides), and the model's ``FaceDataPreprocessor`` is told to hand the
    batch over in the same layout (its ``channels_last`` flag), so cuDNN runs its NHWC convolution kernels,
    the tensor-core path under bf16/fp16 AMP (PyTorch's "Channels Last Memory Format" tutorial). Done before
    training, validation and testing, so ``tools/test.py`` gets it too. On CPUs the gain depends on oneDNN
    and is often nil: it is a GPU switch.

    **Compile** (``compile=True`` or a dict of ``torch.compile`` arguments, e.g. ``dict(mode='max-autotune')``):
    each part of ``parts`` present on the model is compiled in place with ``nn.Module.compile`` before
    training. We compile the parts rather than use mmengine's ``compile`` config key, which compiles the
    Runner's whole ``model.train_step``: that function holds the data preprocessor (lists of data samples,
    CSRI's two branches), the per-branch heads' loss dicts and the optimiser wrapper's step, all Python that
    dynamo breaks the graph on, while the parts are plain tensor-in, tensor-out networks (docs/design.md,
    "Interfaces"), where nearly all the FLOPs are. In-place compiling keeps the parameter names, so
    checkpoints, ``init_cfg`` loading and DDP see the same module as without it (``torch.compile(module)``
    would wrap it and prefix every key with ``_orig_mod.``).

    Parts the model does not have (an FR-only model has no ``sr``; most have ``neck=None``) are skipped;
    a name outside :data:`SPEED_PARTS` is an error.

    Under DDP the hook runs after mmengine wrapped the model, and DDP lays out its gradient buckets by the
    parameters' strides when it is built. Converted under it, the first step's gradients come out wrong (torch
    2.14 warns "Grad strides do not match bucket view strides"; on a 2-layer net they differed by 31 from a
    plain model's) until DDP rebuilds its buckets after that step. So when the conversion changed a parameter
    of a wrapped model, the hook wraps the module again with the Runner's own ``wrap_model`` (the config's
    ``model_wrapper_cfg``, e.g. PartialFC's wrapper) and the old wrapper is dropped.

    Args:
        channels_last (bool): convert to channels-last. Defaults to False.
        compile (bool | dict): compile the parts (a dict: ``torch.compile`` arguments). Defaults to False.
        parts (Sequence[str]): the sub-modules to compile. Defaults to ``('sr', 'backbone', 'neck')``.
    """

    priority = 'VERY_HIGH'  # before any other hook runs a forward pass

    def __init__(self, channels_last: bool = False, compile: Union[bool, Dict[str, Any]] = False,
                 parts: Sequence[str] = SPEED_PARTS) -> None:
        if isinstance(parts, str):
            parts = (parts,)
        unknown = [part for part in parts if part not in SPEED_PARTS]
        if unknown:
            raise ConfigError(f'TrainSpeedHook: unknown part(s) {unknown} in parts={list(parts)}; the parts '
                              f'are {list(SPEED_PARTS)}')
        self.channels_last = bool(channels_last)
        self.compile = compile_kwargs(compile) if compile is not False else None
        self.parts = tuple(parts)
        self.compiled: tuple = ()

    @staticmethod
    def _model(runner) -> nn.Module:
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def convert_channels_last(self, model: nn.Module) -> bool:
        """Move the model's 4-D weights to channels-last and switch its preprocessor's output to it; return
        whether any parameter changed layout."""
        changed = any(p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last)
                      for p in model.parameters())
        model.to(memory_format=torch.channels_last)
        preprocessor = getattr(model, 'data_preprocessor', None)
        if hasattr(preprocessor, 'channels_last'):
            preprocessor.channels_last = True
        else:
            print_log(f'TrainSpeedHook: the data preprocessor {type(preprocessor).__name__} has no channels_last '
                      'flag; its batches stay contiguous (convolutions convert them)', logger='current')
        return changed

    def compile_parts(self, model: nn.Module) -> tuple:
        """Compile each configured part the model has, in place; return the names compiled."""
        compiled = []
        for name in self.parts:
            part = getattr(model, name, None)
            if isinstance(part, nn.Module):
                part.compile(**self.compile)
                compiled.append(name)
        return tuple(compiled)

    def _apply(self, runner, with_compile: bool) -> None:
        model = self._model(runner)
        if self.channels_last and self.convert_channels_last(model) and is_model_wrapper(runner.model):
            wrapper = type(runner.model).__name__
            runner.model = runner.wrap_model(runner.cfg.get('model_wrapper_cfg'), model)
            print_log(f'TrainSpeedHook: channels-last model wrapped again in {type(runner.model).__name__} '
                      f'(was {wrapper}): DDP lays out its gradient buckets by the parameters\' strides',
                      logger='current')
        if with_compile and self.compile is not None and not self.compiled:
            self.compiled = self.compile_parts(model)
            print_log(f'TrainSpeedHook: compiled {list(self.compiled)} with torch.compile({self.compile})',
                      logger='current')

    def before_train(self, runner) -> None:
        self._apply(runner, with_compile=True)

    def before_val(self, runner) -> None:
        self._apply(runner, with_compile=False)

    def before_test(self, runner) -> None:
        self._apply(runner, with_compile=False)
