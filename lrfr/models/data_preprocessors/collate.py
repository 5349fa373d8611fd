"""``face_collate``: mmengine's ``pseudo_collate`` with the batch's faces in one shared-memory block, not one each.

A DataLoader worker sends its batch to the training process through shared memory, and
torch gives every tensor storage its own segment (``file_descriptor`` strategy: a
``shm`` file, an ``mmap``, a descriptor passed over a socket, and the same again to
rebuild it in the receiving process). ``pseudo_collate`` leaves a batch of 256 faces as
256 image tensors: 256 segments per batch, which cost more per face than decoding and
resizing it (docs/benchmark.md, "Feeding a GPU"). ``face_collate`` returns the same
structure (``inputs`` a list of per-sample tensors) but every face is a view into one
storage, so the faces cross in one segment per batch, whatever their sizes. The data samples
need nothing: mmpretrain's ``DataSample`` registers its own reducer that sends its
tensors (``gt_label``, ``hr_img``) as pickled NumPy bytes, without segments.
Selected in a config by ``train_dataloader = dict(collate_fn=dict(type='face_collate'))``.
"""
from typing import Dict, List, Sequence

import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import FUNCTIONS
from torch.utils.data import default_collate


def share_views(tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """The same tensors (values, shapes, order) as views into one storage per dtype.

    Faces of one shape are stacked by torch's ``default_collate``, which in a DataLoader
    worker stacks straight into shared memory (the pixels are copied once). Faces of
    several shapes (native faces left at their size by ``ResizeFace(batched=True)``) are
    copied into one flat buffer, moved to shared memory first in a worker, and viewed
    back at their shapes: one storage (one segment) for the whole batch either way.

    Args:
        tensors (Sequence[torch.Tensor]): any CPU tensors.
    """
    groups: Dict[torch.dtype, List[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(t.dtype, []).append(i)
    out: List[torch.Tensor] = list(tensors)
    for dtype, idx in groups.items():
        if len({tuple(tensors[i].shape) for i in idx}) == 1:
            views = default_collate([tensors[i] for i in idx]).unbind(0)
        else:
            flat = torch.empty(sum(tensors[i].numel() for i in idx), dtype=dtype)
            if torch.utils.data.get_worker_info() is not None:
                flat.share_memory_()  # before filling it: the copy into the segment is then of nothing yet
            views, offset = [], 0
            for i in idx:
                view = flat[offset:offset + tensors[i].numel()].view(tensors[i].shape)
                view.copy_(tensors[i])
                views.append(view)
                offset += tensors[i].numel()
        for i, view in zip(idx, views):
            out[i] = view
    return out


@FUNCTIONS.register_module()
def face_collate(data_batch: Sequence[dict]) -> dict:
    """Collate like ``pseudo_collate``, then re-home the faces (``inputs``) in one storage (:func:`share_views`).

    ``inputs`` stays a list of ``(C, H, W)`` tensors (faces of several sizes are fine), so ``FaceDataPreprocessor`` and the models see exactly what
    ``pseudo_collate`` gives them.

    Args:
        data_batch (Sequence[dict]): the pipeline outputs ``dict(inputs=..., data_samples=...)``.
    """
    batch = pseudo_collate(data_batch)
    if not isinstance(batch, dict) or not isinstance(batch.get('inputs'), list) or not all(
            isinstance(t, torch.Tensor) for t in batch['inputs']):
        raise TypeError(f'face_collate: samples must be dicts with a tensor "inputs" (PackFaceInputs output), '
                        f'got {type(data_batch[0]).__name__}')
    batch['inputs'] = share_views(batch['inputs'])
    return batch
