# CPU-sized version of configs/csri/csri_vdsr-iresnet50-adaface_1xb256_ms1mv2-tinyface.py, the same recipe shrunk
# to train on 2 CPU cores (and in CI, tests/test_recipe_csri_iresnet.py): an IResNet-18 at an eighth of the width
# on 56x56 faces (64-d embedding), a 6-layer 16-channel VDSR, AdaFace heads on both branches. Synthetic branch:
# the demo's 14 HR identities written as a RecordIO set,
#     python tools/dataset_converters/folder2rec.py data/demo_tinyface/HR_Training_Set data/demo_rec --size 112 92
# (build the demo first: python tools/dataset_converters/make_demo.py), degraded by RandomDegradation; native
# branch: the demo's 24 native LR training identities. 16 + 16 per batch, the demo's 300-iteration schedule.
# Start it from a converted checkpoint with --cfg-options load_from=<converted tiny IResNet>.pth (the full
# recipe's load_from); without one it trains from scratch. Not in configs/demo/: it needs the .rec built above.
_base_ = ['../_base_/schedules/demo_iter300.py']

rec_root = 'data/demo_rec'
demo_root = 'data/demo_tinyface'
fr_size = (56, 56)
train_batch_size = 32
syn_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=fr_size),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='RandomDegradation', hr_size=fr_size, upsample_to=fr_size,
         interpolations=('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')),  # as the full recipe
    dict(type='PackFaceInputs'),
]
native_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=fr_size),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
native_test_pipeline = [dict(type='LoadFaceImage'), dict(type='ResizeFace', size=fr_size), dict(type='PackFaceInputs')]

model = dict(
    type='CSRI',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=True),
    sr=dict(type='VDSR', mid_channels=16, num_layers=6, output_size=fr_size),
    backbone=dict(type='IResNet', depth=18, input_size=fr_size, embed_dim=64, width_mult=0.125),
    head=dict(type='AdaFaceHead', num_classes=14, in_channels=64, margin=0.4, h=0.333),
    native_head=dict(type='AdaFaceHead', num_classes=24, in_channels=64, margin=0.4, h=0.333),
    lambda_sr=0.003,
)
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=0,
    sampler=dict(type='MultiBranchSampler', batch_size=train_batch_size, source_ratio=dict(syn=1, nat=1)),
    dataset=dict(
        type='ConcatDataset',
        ignore_keys=['classes', 'num_classes'],
        datasets=[
            dict(type='MXFaceDataset', data_root=rec_root, branch='syn', pipeline=syn_train_pipeline),
            dict(type='DemoTinyFaceDataset', data_root=demo_root, split='train', branch='nat',
                 pipeline=native_train_pipeline),
        ]),
)
auto_scale_lr = dict(base_batch_size=train_batch_size)  # both branches: what --auto-scale-lr scales from
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DemoTinyFaceDataset', data_root=demo_root, split='test', pipeline=native_test_pipeline),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='IdentificationMetric')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=0.01))
