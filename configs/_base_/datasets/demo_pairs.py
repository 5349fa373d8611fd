# The demo's synthetic LR/HR pairs: auxiliary HR faces bicubic-down-sampled to TinyFace's mean size (the paper's
# CelebA pairs), then bicubic-up-sampled back to the FR input size (VDSR's interpolated-LR input), so they reach
# the SR head at the size native faces do (one tensor in a CSRI batch); the HR target is kept at the FR input
# size. Trains SR heads and the synthetic branch. For LR sizes drawn like TinyFace's (paper Fig. 4: 6-32 px,
# mean 20) replace size=... by height_range=(6, 32).
_base_ = './demo_tinyface_sr.py'

pair_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='BicubicDownsample', size={{_base_.lr_size}}, hr_size={{_base_.fr_size}},
         upsample_to={{_base_.fr_size}}),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='DemoHRFaceDataset', data_root={{_base_.data_root}},
                 branch='syn', pipeline=pair_train_pipeline))
