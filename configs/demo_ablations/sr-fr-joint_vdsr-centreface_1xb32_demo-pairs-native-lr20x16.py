# Ablation: SR-FR joint stage 2 with native faces shrunk to 20x16 before the SR head (the earlier input path),
# from the 20x16 joint stage 1. Everything else is the shipped config of the same name.
_base_ = ['../demo/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs-native.py',
          '../_base_/datasets/demo_sr-input-20x16.py']

load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs-lr20x16/final.pth'
train_dataloader = dict(dataset=dict(pipeline={{_base_.native_train_pipeline_lr}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.native_test_pipeline_lr}}))
test_dataloader = val_dataloader
benchmark = dict(name='SR-FR joint (VDSR + CentreFace), SR input 20x16', row=13)
ablation = dict(sr_input_size={{_base_.lr_size}})  # what the SR head is fed (tests/test_configs.py checks it)
