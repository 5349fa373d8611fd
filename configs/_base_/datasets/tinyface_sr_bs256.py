# TinyFace for models with an SR head: the same pipelines as tinyface_bs256.py (inherited, one definition). The
# native LR face is bicubic-resized once, from its native size, to the 112x96 FR input, exactly as for FR-only
# models; the pre-upsampling SR head (bicubic to its output size, then a CNN) then refines it at that size, so no
# face is first shrunk to 20x16 (TinyFace faces run up to 32 px). Same test protocol. See docs/data_pipeline.md.
_base_ = './tinyface_bs256.py'
