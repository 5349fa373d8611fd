# CelebA LR/HR pairs (the LRFR paper's synthetic branch, §3 (I)): every aligned CelebA face (all 10,177
# identities) centre-cropped to 96x112 (w x h, as celeba_hr_bs256.py), bicubic-down-sampled to TinyFace's mean
# 20x16 (anti-aliased, like MATLAB's imresize), then bicubic-up-sampled back to 112x96 (VDSR's interpolated-LR
# input: the size native TinyFace faces reach the SR head at, so a CSRI batch is one tensor), with the 112x96 HR
# face kept as the SR target `hr_img`. Trains the SR-FR joint model (CSRI stage 1); tested on TinyFace through
# the SR head. For LR sizes drawn like TinyFace's (paper Fig. 4: 6-32 px, mean 20) replace size=... by
# height_range=(6, 32) in `pair_lr`.
_base_ = './tinyface_sr_bs256.py'

celeba_root = 'data/celeba'
pair_crop = dict(type='mmcv.CenterCrop', crop_size=(96, 112))  # (w, h), mmcv's order
pair_lr = dict(type='BicubicDownsample', size={{_base_.lr_size}}, hr_size={{_base_.fr_size}},
               upsample_to={{_base_.fr_size}})
pair_train_pipeline = [
    dict(type='LoadFaceImage'),
    pair_crop,
    dict(type='RandomHFlip', prob=0.5),
    pair_lr,
    dict(type='PackFaceInputs'),
]
pair_test_pipeline = [dict(type='LoadFaceImage'), pair_crop, pair_lr, dict(type='PackFaceInputs')]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CelebADataset', data_root=celeba_root, split='all', branch='syn',
                 pipeline=pair_train_pipeline))
