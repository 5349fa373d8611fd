# A large aligned face set in InsightFace's RecordIO format (train.rec / train.idx / property: MS1MV2 "faces_emore",
# MS1MV3 "ms1m-retinaface-t1", Glint360K, WebFace42M), read by MXFaceDataset without mxnet, at the 112x112
# alignment of those releases, for IResNet training (arcface_torch / AdaFace recipes). Tested on TinyFace: the
# native LR face bicubic-resized once to 112x112 (the other pretrained-model pipelines are in configs/pretrained/).
# Sizes are (H, W). Set rec_root to the folder holding train.rec (see docs/datasets.md, "RecordIO").
rec_root = 'data/ms1m-retinaface-t1'
tinyface_root = 'data/tinyface'
fr_size = (112, 112)
train_batch_size = 512

rec_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='RandomHFlip', prob=0.5),  # arcface_torch's and AdaFace's only geometric augmentation
    dict(type='PackFaceInputs'),
]
native_test_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=fr_size),
    dict(type='PackFaceInputs'),
]

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
    dataset=dict(type='MXFaceDataset', data_root=rec_root, branch='syn', pipeline=rec_train_pipeline),
)
val_dataloader = dict(
    batch_size=256,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    prefetch_factor=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='TinyFaceDataset', data_root=tinyface_root, split='test', pipeline=native_test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IdentificationMetric')
test_evaluator = val_evaluator
# the total batch the schedules' lr is set for (tools/train.py --auto-scale-lr scales from it)
auto_scale_lr = dict(base_batch_size=train_batch_size)
