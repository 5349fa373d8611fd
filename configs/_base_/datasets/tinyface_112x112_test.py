# TinyFace's 1:N identification test (Cheng et al., ACCV 2018: 3,728 probes vs 4,443 gallery matches + 153,428
# distractors) as public pretrained face models are evaluated on it: 112x112 input, the image and its mirror
# fused (the model's flip_test; summing the two un-normalised embeddings is both arcface_torch's and AdaFace's
# fusion, docs/model_zoo.md), then unit length and cosine similarity (AdaFace's tinyface_helper ranks by the
# inner product of unit features). Test only: there is no training set or schedule here.
# TinyFace's faces are tight crops of 6-32 px: each is bicubic-resized once, from its native size, to 112x112
# (aspect not kept), without alignment. AdaFace's published figures use its own MTCNN-aligned 112x112 copy of
# the test set instead (validation_lq/README.md of mk-minchul/AdaFace); docs/model_zoo.md says what that means.
tinyface_root = 'data/tinyface'
fr_size = (112, 112)
test_batch_size = 128

test_pipeline = [
    dict(type='LoadFaceImage'),  # BGR, as OpenCV reads it; the model's preprocessor sets the colour order
    dict(type='ResizeFace', size=fr_size, interpolation='bicubic'),
    dict(type='PackFaceInputs'),
]

test_dataloader = dict(
    batch_size=test_batch_size,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    prefetch_factor=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='TinyFaceDataset', data_root=tinyface_root, split='test', pipeline=test_pipeline),
)
test_evaluator = dict(type='IdentificationMetric', flip_fusion=True, l2_normalize=True, distance='cosine')
test_cfg = dict(type='TestLoop')
