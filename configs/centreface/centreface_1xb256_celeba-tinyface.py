# FR only, step 2 (LRFR paper Fig. 5a): the CelebA-pre-trained CentreFace fine-tuned on TinyFace's native LR
# training faces, bicubic-up-sampled to 112x96. Table 3 "CentreFace", Table 5 "CentreFace, No SR".
# The classifier and the centres are re-made for TinyFace's 2,570 identities (load_from skips them, their shape
# differs, with a warning); the network starts from step 1.
_base_ = ['../_base_/models/centreface.py', '../_base_/datasets/tinyface_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(
    head=dict(heads=[
        dict(type='SoftmaxHead', in_channels=512, num_classes=2570),
        dict(type='CenterLoss', in_channels=512, num_classes=2570, loss_weight=0.003, alpha=0.5),
    ]))
load_from = 'work_dirs/centreface_1xb256_celeba/final.pth'
benchmark = dict(name='CentreFace (FR only)')
