# TinyFace for models with an SR head: native LR faces resized to the fixed 20x16 LR size, which the SR head
# up-samples to the 112x96 FR input (paper Fig. 5b and CSRI's native branch). Same test protocol.
_base_ = './tinyface_bs256.py'

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
