# FR only, step 2 (paper Fig. 5a, Table 3): fine-tune the HR-pre-trained CentreFace on native LR faces
# bicubic-up-sampled to its input size. Table 5 row "CentreFace, no SR".
_base_ = ['../_base_/models/centreface_demo.py', '../_base_/datasets/demo_tinyface.py',
          '../_base_/schedules/demo_iter300.py']

# A classifier and centres for the 10 native identities, new: load_from skips the 14-identity ones (shape).
model = dict(head={{_base_.native_fr_head}})
load_from = 'work_dirs/centreface_1xb32_demo-hr/final.pth'
optim_wrapper = dict(optimizer=dict(lr=0.005))  # 0.4x pre-training: a tenth under-fits the new classifier in 300 its
benchmark = dict(name='CentreFace (FR only)', row=1, baseline=True)  # the rows' intervals are against this one
