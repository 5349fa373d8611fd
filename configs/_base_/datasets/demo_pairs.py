# The demo's synthetic LR/HR pairs: auxiliary HR faces bicubic-down-sampled to TinyFace's mean size, with the
# HR target kept at the FR input size (the paper's CelebA pairs). Trains SR heads and the synthetic branch.
_base_ = './demo_tinyface_sr.py'

pair_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='BicubicDownsample', size={{_base_.lr_size}}, hr_size={{_base_.fr_size}}),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='DemoHRFaceDataset', data_root={{_base_.data_root}},
                 branch='syn', pipeline=pair_train_pipeline))
