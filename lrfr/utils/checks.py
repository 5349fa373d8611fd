"""Argument checks shared by models (and anything else that takes sizes and counts from a config).

Each raises with the argument's name and the value it got, so a config typo fails with a readable message
instead of a shape error deep inside a layer.
"""
from numbers import Integral
from typing import Sequence, Tuple, Union

SizeArg = Union[int, Sequence[int]]


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an int ``>= minimum``; raise naming ``name`` otherwise.

    Args:
        value (int): the value to check.
        name (str): argument name used in the error message.
        minimum (int): smallest accepted value. Defaults to 1.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f'{name} must be an int, got {type(value).__name__} ({value!r})')
    if value < minimum:
        raise ValueError(f'{name} must be >= {minimum}, got {value}')
    return int(value)


def to_size_pair(value: SizeArg, name: str) -> Tuple[int, int]:
    """Turn ``s`` or ``(h, w)`` into a ``(h, w)`` tuple of positive ints.

    Args:
        value (int | Sequence[int]): one size for both sides, or ``(height, width)``.
        name (str): argument name used in the error message.
    """
    if isinstance(value, Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise TypeError(f'{name} must be an int or a (height, width) pair, got {value!r}')
    return (check_positive_int(value[0], f'{name}[0] (height)'),
            check_positive_int(value[1], f'{name}[1] (width)'))
