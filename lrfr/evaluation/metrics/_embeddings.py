"""Reading embeddings off data samples: the part shared by the identification and verification metrics.

The module is private; ``sample_embedding`` is exported by ``lrfr.evaluation.metrics`` for inference.
"""
from typing import Any, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F


def sample_embedding(sample: Mapping[str, Any], flip_fusion: bool, l2_normalize: bool,
                     metric: str) -> torch.Tensor:
    """The matching feature of one predicted data sample, as a float32 CPU vector.

    ``flip_fusion`` averages ``embedding`` and ``embedding_flip`` (the mirrored image's
    embedding, set by ``FaceRecognizer(flip_test=True)``); ``l2_normalize`` then scales
    the result to unit length (after the fusion, as InsightFace does with the sum).
    On un-normalised backbone outputs ``x = |x| * u`` this is also AdaFace's norm-weighted
    fusion: its ``pre_norm_vector_add`` (``|x1| u1 + |x2| u2``) and ``norm_weighted_avg``
    (the same divided by ``|x1| + |x2|``) differ from the mean only by a positive factor,
    which the normalisation removes (tests/models/test_pretrained_configs.py).

    Args:
        sample (Mapping): a data sample as a dict (mmengine's Evaluator passes ``to_dict()``).
        flip_fusion (bool): fuse with ``embedding_flip``.
        l2_normalize (bool): L2-normalise.
        metric (str): metric name for error messages.

    Returns:
        torch.Tensor: ``(D,)`` float32 on the CPU.
    """
    if 'embedding' not in sample:
        raise KeyError(f'{metric}: the data sample has no `embedding` field (got fields '
                       f'{sorted(sample)}); the model\'s predict must set it')
    emb = torch.as_tensor(sample['embedding']).detach().float().reshape(-1)
    if flip_fusion:
        if 'embedding_flip' not in sample:
            raise KeyError(f'{metric}: flip_fusion=True needs `embedding_flip` on each data sample; '
                           'set flip_test=True on the model')
        flip = torch.as_tensor(sample['embedding_flip']).detach().float().reshape(-1)
        if flip.shape != emb.shape:
            raise ValueError(f'{metric}: embedding_flip has shape {tuple(flip.shape)}, '
                             f'embedding has {tuple(emb.shape)}')
        emb = (emb + flip) / 2
    if l2_normalize:
        emb = F.normalize(emb, dim=0)
    return emb.cpu()


def sample_label(sample: Mapping[str, Any], metric: str) -> int:
    """The integer identity ``gt_label`` of a data sample."""
    if 'gt_label' not in sample:
        raise KeyError(f'{metric}: the data sample has no `gt_label` (fields: {sorted(sample)})')
    label = torch.as_tensor(sample['gt_label']).reshape(-1)
    if label.numel() != 1:
        raise ValueError(f'{metric}: expected one gt_label per sample, got {label.tolist()}')
    return int(label.item())


def dataset_order(indices: Sequence[Optional[int]], metric: str) -> np.ndarray:
    """Permutation putting gathered results back in dataset order (by ``sample_idx``).

    Without ``sample_idx`` on any sample the arrival order is kept (mmengine's
    ``collect_results`` already restores the dataset order for the default sampler).
    """
    missing = [i is None for i in indices]
    if all(missing):
        return np.arange(len(indices))
    if any(missing):
        raise ValueError(f'{metric}: some data samples carry metainfo `sample_idx` and some do not')
    idx = np.asarray(indices, dtype=np.int64)
    if np.unique(idx).size != idx.size:
        raise ValueError(f'{metric}: duplicate sample_idx values in the gathered results; '
                         'each image must be evaluated once')
    return np.argsort(idx, kind='stable')


def stack(features: List[torch.Tensor], what: str, metric: str) -> torch.Tensor:
    """Stack per-sample vectors, naming the set when dimensions disagree."""
    dims = {f.shape[0] for f in features}
    if len(dims) != 1:
        raise ValueError(f'{metric}: {what} embeddings have different sizes {sorted(dims)}')
    return torch.stack(features)
