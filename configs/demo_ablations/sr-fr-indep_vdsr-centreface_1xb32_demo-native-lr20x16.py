# Ablation: SR then FR (independent) with native faces shrunk to 20x16 before the frozen SR head, which was
# trained on 20x16 input (the earlier input path). Everything else is the shipped config of the same name.
_base_ = ['../demo/sr-fr-indep_vdsr-centreface_1xb32_demo-native.py', '../_base_/datasets/demo_sr-input-20x16.py']

model = dict(sr=dict(init_cfg=dict(checkpoint='work_dirs/vdsr_1xb32_demo-pairs-lr20x16/final.pth')))
train_dataloader = dict(dataset=dict(pipeline={{_base_.native_train_pipeline_lr}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.native_test_pipeline_lr}}))
test_dataloader = val_dataloader
benchmark = dict(name='VDSR then CentreFace (independent), SR input 20x16', row=12)
ablation = dict(sr_input_size={{_base_.lr_size}})  # what the SR head is fed (tests/test_configs.py checks it)
