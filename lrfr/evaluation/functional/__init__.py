"""Functional metric cores: plain functions on numpy arrays or torch tensors, no mmengine."""
from .identification import (OFFICIAL_MAX_RANK, evaluate_identification,
                             precision_recall_curve)
from .sr_quality import psnr, ssim, to_y_channel
from .verification import (best_threshold, evaluate_verification, kfold_accuracy,
                           pair_scores, roc_curve, tar_at_far)

__all__ = [
    'OFFICIAL_MAX_RANK', 'evaluate_identification', 'precision_recall_curve', 'psnr', 'ssim',
    'to_y_channel', 'best_threshold', 'evaluate_verification', 'kfold_accuracy', 'pair_scores',
    'roc_curve', 'tar_at_far'
]
