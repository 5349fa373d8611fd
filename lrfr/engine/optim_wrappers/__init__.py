from .part_clip_optim_wrapper import PartClipOptimWrapper, split_by_part

__all__ = ['PartClipOptimWrapper', 'split_by_part']
