from .part_clip_optim_wrapper import AmpPartClipOptimWrapper, PartClipOptimWrapper, split_by_part

__all__ = ['PartClipOptimWrapper', 'AmpPartClipOptimWrapper', 'split_by_part']
