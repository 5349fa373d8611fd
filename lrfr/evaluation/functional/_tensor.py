"""Input checks shared by the functional metrics: numpy or torch in, validated torch out."""
from typing import Any, Optional, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


def as_tensor(x: Any, name: str, device: Optional[Union[str, torch.device]] = None) -> torch.Tensor:
    """Turn a numpy array or torch tensor into a tensor (no copy when possible).

    Args:
        x (np.ndarray | torch.Tensor): the input.
        name (str): argument name used in error messages.
        device (str | torch.device, optional): move the tensor there. Defaults to None
            (keep the tensor's device; numpy arrays land on the CPU).

    Returns:
        torch.Tensor: the same data as a tensor.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f'{name}: expected a numeric array, got dtype=object')
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        raise TypeError(f'{name}: expected a numpy array or a torch tensor, got {type(x).__name__}')
    return t if device is None else t.to(device)


def as_features(x: Any, name: str, device: Optional[Union[str, torch.device]] = None,
                check_finite: bool = True) -> torch.Tensor:
    """A 2-D ``(N, D)`` floating-point feature matrix (ints are cast to float64).

    Args:
        x (np.ndarray | torch.Tensor): features, one row per image.
        name (str): argument name used in error messages.
        device (str | torch.device, optional): target device. Defaults to None.
        check_finite (bool): raise on NaN/Inf. Defaults to True (callers that see every
            row's squared norm anyway check that instead: one pass fewer).

    Returns:
        torch.Tensor: float16/bfloat16 are promoted to float32, integers to float64
        (exact for small integers); float32/float64 are kept.
    """
    t = as_tensor(x, name, device)
    if t.dim() != 2:
        raise ValueError(f'{name}: expected a 2-D (num_images, dim) matrix, got shape {tuple(t.shape)}')
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f'{name}: expected real numbers, got {t.dtype}')
    if not t.is_floating_point():
        t = t.to(torch.float64)
    elif t.dtype not in (torch.float32, torch.float64):
        t = t.to(torch.float32)
    if check_finite and t.numel() and not bool(torch.isfinite(t).all()):
        raise ValueError(f'{name}: features contain NaN or Inf')
    return t


def as_labels(x: Any, name: str, length: int) -> np.ndarray:
    """A 1-D int64 numpy label vector of the given length (labels are small: they live on the CPU).

    Args:
        x (np.ndarray | torch.Tensor | Sequence[int]): integer labels.
        name (str): argument name used in error messages.
        length (int): expected number of labels (rows of the matching features).

    Returns:
        np.ndarray: int64 labels.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f'{name}: expected a 1-D label vector, got shape {arr.shape}')
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f'{name}: expected integer labels, got dtype {arr.dtype}')
    if arr.shape[0] != length:
        raise ValueError(f'{name}: got {arr.shape[0]} labels for {length} feature rows')
    return arr.astype(np.int64, copy=False)
