# The demo's native branch for models with an SR head: LR faces resized to the fixed LR size, which the SR
# head up-samples to the FR input size.
_base_ = './demo_tinyface.py'

native_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size={{_base_.lr_size}}),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
native_test_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size={{_base_.lr_size}}),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=native_train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=native_test_pipeline))
test_dataloader = val_dataloader
