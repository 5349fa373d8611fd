# CSRI's two data branches on a modern 112x112 backbone (LRFR paper §3, Fig. 2, with the data of today's face
# recognisers). Synthetic branch: HR faces of an InsightFace RecordIO set (MXFaceDataset; default MS1MV2), each
# degraded with lrfr's RandomDegradation (TinyFace-like LR heights 6-32 px, random blur, noise, JPEG, and the
# resizing filter drawn among five as in AdaFace's low-resolution augmentation) and bicubic-up-sampled back to
# 112x112, the 112x112 HR face kept as the SR target. AdaFace applies its low-resolution augmentation to 20 % of
# the faces (sides 0.2-1.0 of 112 px); here every synthetic face is degraded, to TinyFace's sizes, because CSRI's
# SR loss needs an LR/HR pair per synthetic sample and the target is TinyFace (the HR faces themselves are what
# the converted pretrained model was trained on). Native branch: TinyFace training faces bicubic-resized once
# to 112x112. MultiBranchSampler puts 128 of each in every batch of 256. Tested on TinyFace through the SR head.
# Sizes are (H, W).
_base_ = './rec-tinyface_112x112_bs512.py'

rec_root = 'data/faces_emore'
train_batch_size = 256
syn_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size={{_base_.fr_size}}),  # a no-op on the 112x112 releases; other .rec sizes fit
    dict(type='RandomHFlip', prob=0.5),
    # AdaFace draws its resizing filter among OpenCV's nearest, linear, area, cubic and Lanczos: all five here
    dict(type='RandomDegradation', hr_size={{_base_.fr_size}}, upsample_to={{_base_.fr_size}},
         interpolations=('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')),
    dict(type='PackFaceInputs'),
]
native_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size={{_base_.fr_size}}),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
# the base's loader settings (workers, pinned memory, prefetch, face_collate) with both branches in each batch
train_dataloader = dict(
    batch_size=train_batch_size,
    sampler=dict(_delete_=True, type='MultiBranchSampler', batch_size=train_batch_size,
                 source_ratio=dict(syn=1, nat=1)),
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        # each branch has its own label space (MS1MV2 and TinyFace identities)
        ignore_keys=['classes', 'num_classes'],
        datasets=[
            dict(type='MXFaceDataset', data_root=rec_root, branch='syn', pipeline=syn_train_pipeline),
            dict(type='TinyFaceDataset', data_root={{_base_.tinyface_root}}, split='train', branch='nat',
                 pipeline=native_train_pipeline),
        ]),
)
auto_scale_lr = dict(base_batch_size=train_batch_size)  # both branches together
