# FR only, step 2 (LRFR paper Fig. 5a): the CelebA-pre-trained DeepID2 fine-tuned on TinyFace's native LR faces,
# bicubic-up-sampled to 112x96, at a tenth of its pre-training rate. Table 3 "DeepID2".
# The classifier is re-made for TinyFace's 2,570 identities.
_base_ = ['../_base_/models/deepid2.py', '../_base_/datasets/tinyface_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(head=dict(num_classes=2570))
optim_wrapper = dict(optimizer=dict(lr=0.001))
load_from = 'work_dirs/deepid2_1xb256_celeba/final.pth'
benchmark = dict(name='DeepID2 (FR only)')
