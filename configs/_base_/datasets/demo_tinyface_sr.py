# The demo's native branch for models with an SR head: the same pipelines as demo_tinyface.py (inherited, one
# definition). Native LR faces are bicubic-resized once, from their native size, to the 56x48 FR input, as for
# FR-only models; the pre-upsampling SR head refines them at that size. See docs/data_pipeline.md.
_base_ = './demo_tinyface.py'
