# SphereFace fine-tuned on TinyFace (LRFR paper Fig. 5a step 2), the step the paper reports as not converging
# (footnote 4); kept so the claim can be checked. The A-Softmax classifier is re-made for TinyFace's 2,570
# identities and the lambda schedule restarts at 1000 (the hook reads the iteration of this run).
_base_ = ['../_base_/models/sphereface20a.py', '../_base_/datasets/tinyface_bs256.py',
          '../_base_/schedules/sgd-finetune_iter2k.py']

model = dict(head=dict(num_classes=2570))
load_from = 'work_dirs/sphereface_1xb256_celeba/final.pth'
benchmark = dict(name='SphereFace (fine-tuned on TinyFace)')
