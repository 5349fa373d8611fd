"""Anneal A-Softmax's lambda (SphereFace) from the runner's iteration, so the schedule lives in the config."""
import math
from typing import Optional

from mmengine.hooks import Hook
from torch import nn

from lrfr.registry import HOOKS

#: Attribute through which a module exposes the A-Softmax lambda (see ``ASoftmaxHead``).
LAMBDA_ATTR = 'asoftmax_lambda'


def set_asoftmax_lambda(model: nn.Module, value: float) -> int:
    """Set ``asoftmax_lambda`` on every sub-module of ``model`` that has it; return how many.

    ``model.modules()`` also walks into wrappers (``MMDistributedDataParallel``'s
    ``module``) and into every head (CSRI's two branch heads, a CompositeHead's members).
    """
    count = 0
    for module in model.modules():
        if hasattr(module, LAMBDA_ATTR):
            setattr(module, LAMBDA_ATTR, value)
            count += 1
    return count


@HOOKS.register_module()
class ASoftmaxLambdaHook(Hook):
    """Before each training iteration, set A-Softmax's lambda from the iteration count.

    ``lambda = max(lambda_min, base * (1 + gamma * iter)^(-power))``, the schedule of
    SphereFace's caffe ``MarginInnerProduct`` layer (Liu et al. 2017), with ``iter``
    the runner's 0-based global iteration (so resuming continues the schedule).
    The value is written to every module exposing ``asoftmax_lambda`` and logged as
    ``train/asoftmax_lambda``. A model without such a module is a config error and
    raises at the first iteration.

    Example:
        >>> custom_hooks = [dict(type='ASoftmaxLambdaHook', base=1000., gamma=0.12,
        ...                      power=1., lambda_min=5.)]

    Args:
        base (float): ``lambda`` at iteration 0, ``> 0``. Defaults to 1000.0.
        gamma (float): decay rate ``>= 0``. Defaults to 0.12.
        power (float): decay exponent ``>= 0``. Defaults to 1.0.
        lambda_min (float): floor of ``lambda``, ``>= 0``. Defaults to 5.0.
    """

    priority = 'NORMAL'

    def __init__(self,
                 base: float = 1000.0,
                 gamma: float = 0.12,
                 power: float = 1.0,
                 lambda_min: float = 5.0) -> None:
        for name, value, low in (('base', base, None), ('gamma', gamma, 0.0),
                                 ('power', power, 0.0), ('lambda_min', lambda_min, 0.0)):
            if not math.isfinite(value):
                raise ValueError(f'{name} must be finite, got {value}')
            if low is None and not value > 0:
                raise ValueError(f'{name} must be > 0, got {value}')
            if low is not None and not value >= low:
                raise ValueError(f'{name} must be >= {low}, got {value}')
        self.base, self.gamma = float(base), float(gamma)
        self.power, self.lambda_min = float(power), float(lambda_min)

    def lambda_at(self, iteration: int) -> float:
        """``max(lambda_min, base * (1 + gamma * iteration)^(-power))``."""
        if iteration < 0:
            raise ValueError(f'iteration must be >= 0, got {iteration}')
        return max(self.lambda_min, self.base * (1.0 + self.gamma * iteration) ** (-self.power))

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        """Write ``lambda_at(runner.iter)`` to the model's A-Softmax heads."""
        value = self.lambda_at(runner.iter)
        if set_asoftmax_lambda(runner.model, value) == 0:
            raise RuntimeError(
                f'ASoftmaxLambdaHook found no module with an {LAMBDA_ATTR!r} attribute in '
                f'{type(runner.model).__name__}; use an ASoftmaxHead or remove the hook from custom_hooks')
        runner.message_hub.update_scalar('train/asoftmax_lambda', value)
