# The demo's earlier SR input path, kept for the ablation configs in configs/demo_ablations/ (combine it with a
# demo config as a second base): the SR head gets faces at 20x16 (TinyFace's mean size, the demo's `lr_size`)
# and up-samples them itself. Native faces are shrunk to 20x16 (the demo's are 16-28 px tall, so about half
# lose pixels); synthetic LR stays at 20x16 (not up-sampled back); HR targets at the 56x48 FR size.
pair_train_pipeline_lr = [
    dict(type='LoadFaceImage'),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='BicubicDownsample', size=(20, 16), hr_size=(56, 48)),
    dict(type='PackFaceInputs'),
]
native_train_pipeline_lr = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=(20, 16)),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
native_test_pipeline_lr = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=(20, 16)),
    dict(type='PackFaceInputs'),
]
