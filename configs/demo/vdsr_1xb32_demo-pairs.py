# SR alone (paper Fig. 5b, step 1): VDSR trained on synthetic LR/HR pairs of the auxiliary faces.
_base_ = ['../_base_/models/vdsr-centreface_demo.py', '../_base_/datasets/demo_pairs.py',
          '../_base_/schedules/demo_iter300.py']

model = dict(_delete_=True, type='SuperResolver', sr={{_base_.model.sr}},
             data_preprocessor={{_base_.model.data_preprocessor}})
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0.0, _delete_=True))
# No identity test for an SR model; PSNR/SSIM on pairs is SRQualityMetric's job (see docs/csri.md).
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
