# TinyFace (Cheng et al., ACCV 2018) on its official tree: the native LR training set (7,804 faces of 2,570
# identities) and the 1:N identification test (3,728 probes vs 4,443 gallery matches + 153,428 distractors, one
# dataset with split='test', one IdentificationMetric: Euclidean distance, CMC ranks and mAP).
# Every model sees the native LR face bicubic-resized once, from its native size, to the FR input size: FR-only
# models directly (paper Fig. 5a), models with an SR head through it (the *_sr variant inherits these pipelines).
# Sizes are (H, W).
tinyface_root = 'data/tinyface'
fr_size = (112, 96)  # FR input of every model in the paper (CentreFace's aligned face)
lr_size = (20, 16)   # TinyFace's mean face size (paper Fig. 4): synthetic pairs are down-sampled to it
train_batch_size = 256

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

# GPU feeding: workers kept between epochs/validations, batches in page-locked memory (copied to the GPU
# without blocking), 4 batches queued per worker. All three need num_workers > 0 (0 is refused by name).
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    prefetch_factor=4,
    # the batch's faces in one shared-memory storage (one segment per batch, not per face): up to 3x the faces
    # per worker (docs/benchmark.md, "Feeding a GPU"); the batch is the same as pseudo_collate's
    collate_fn=dict(type='face_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='TinyFaceDataset', data_root=tinyface_root, split='train', branch='nat',
                 pipeline=native_train_pipeline),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    prefetch_factor=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='TinyFaceDataset', data_root=tinyface_root, split='test',
                 pipeline=native_test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IdentificationMetric')
test_evaluator = val_evaluator
# the total batch the schedules' lr is set for (tools/train.py --auto-scale-lr scales from it)
auto_scale_lr = dict(base_batch_size=train_batch_size)
