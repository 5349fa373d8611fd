# The demo's auxiliary high-res faces (posed originals of 14 identities shared with neither the native training
# set nor the test set: the role CelebA plays in the paper), at the FR input size: FR pre-training (paper
# Fig. 5a, step 1). Tested on the demo's native LR test.
_base_ = './demo_tinyface.py'

hr_train_pipeline = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size={{_base_.fr_size}}),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='DemoHRFaceDataset', data_root={{_base_.data_root}},
                 pipeline=hr_train_pipeline))
