# CelebA LR/HR pairs (the LRFR paper's synthetic branch, §3 (I)): every aligned CelebA face (all 10,177
# identities) centre-cropped to 96x112 (w x h, as celeba_hr_bs256.py), bicubic-down-sampled to TinyFace's mean
# 20x16 (anti-aliased, like MATLAB's imresize), with the 112x96 HR face kept as the SR target `hr_img`. Trains
# the SR-FR joint model (CSRI stage 1); tested on TinyFace through the SR head.
_base_ = './tinyface_sr_bs256.py'

celeba_root = 'data/celeba'
pair_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='mmcv.CenterCrop', crop_size=(96, 112)),  # (w, h), mmcv's order
    dict(type='RandomHFlip', prob=0.5),
    dict(type='BicubicDownsample', size={{_base_.lr_size}}, hr_size={{_base_.fr_size}}),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CelebADataset', data_root=celeba_root, split='all', branch='syn',
                 pipeline=pair_train_pipeline))
