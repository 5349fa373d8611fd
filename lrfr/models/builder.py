"""Building sub-modules from config dicts or ready modules (shared by recognisers and composite heads)."""
from typing import Optional, Union

from torch import nn

from lrfr.registry import MODELS

ModuleCfg = Union[dict, nn.Module]


def build_part(part: Optional[ModuleCfg]) -> Optional[nn.Module]:
    """Build a sub-module from a config dict, or pass a ready module through.

    Accepting modules as well as dicts lets tests and scripts compose parts
    directly, while configs stay plain dicts (the mmpretrain ImageClassifier habit).
    """
    if part is None or isinstance(part, nn.Module):
        return part
    if isinstance(part, dict):
        return MODELS.build(part)
    raise TypeError(f'expected a config dict or an nn.Module, got {type(part).__name__}')
