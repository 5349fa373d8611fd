# CelebA (Liu et al., ICCV 2015) as the auxiliary HR face set of the LRFR paper: all 202,599 aligned images of
# the 10,177 identities (split='all'; the official partitions are identity-disjoint, the paper trains on all),
# at the FR input size, for FR pre-training (paper Fig. 5a, step 1). Tested on TinyFace (native LR up-sampled).
# Face crop: the aligned 178x218 images are centre-cropped to 96x112 (w x h), which puts the face at the scale
# of CentreFace's 112x96 alignment template (eye-to-mouth ~40 px in both); see docs/csri.md.
_base_ = './tinyface_bs256.py'

celeba_root = 'data/celeba'
hr_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='mmcv.CenterCrop', crop_size=(96, 112)),  # (w, h), mmcv's order
    dict(type='ResizeFace', size={{_base_.fr_size}}),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CelebADataset', data_root=celeba_root, split='all',
                 pipeline=hr_train_pipeline))
