# Embedded demo benchmark (AT&T/ORL faces degraded to TinyFace-like native LR; lfw_subset distractors),
# built under data_root on first use. Native branch (train) and 1:N identification test (probe vs gallery).
# Sizes are (H, W). Every model gets the native LR face bicubic-resized once, from its native size, to the FR
# input size: FR-only models directly, models with an SR head through it (demo_tinyface_sr.py inherits these).
data_root = 'data/demo_tinyface'
fr_size = (56, 48)   # FR input: half the paper's 112x96, so the demo trains on 2 CPU cores
lr_size = (20, 16)   # TinyFace's mean face size (paper, Table 1 / Fig. 4): synthetic pairs' LR size
train_batch_size = 32

native_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=fr_size),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
native_test_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=fr_size),
    dict(type='PackFaceInputs'),
]

train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='DemoTinyFaceDataset', data_root=data_root, split='train',
                 pipeline=native_train_pipeline),
)
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DemoTinyFaceDataset', data_root=data_root, split='test',
                 pipeline=native_test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IdentificationMetric')
test_evaluator = val_evaluator
# the demo loads in the main process (num_workers=0: no worker-only loader options; see tinyface_bs256.py);
# the total batch its lr is set for (tools/train.py --auto-scale-lr scales from it)
auto_scale_lr = dict(base_batch_size=train_batch_size)
