# Ablation: CSRI with both branches reaching the SR head at 20x16 (synthetic LR not up-sampled back, native
# faces shrunk), from the 20x16 joint stage 1: the earlier input path. Everything else is the shipped config.
_base_ = ['../demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py', '../_base_/datasets/demo_sr-input-20x16.py']

load_from = 'work_dirs/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs-lr20x16/final.pth'
train_dataloader = dict(dataset=dict(datasets=[
    dict(type='DemoHRFaceDataset', data_root={{_base_.data_root}}, branch='syn',
         pipeline={{_base_.pair_train_pipeline_lr}}),
    dict(type='DemoTinyFaceDataset', data_root={{_base_.data_root}}, split='train', branch='nat',
         pipeline={{_base_.native_train_pipeline_lr}}),
]))
val_dataloader = dict(dataset=dict(pipeline={{_base_.native_test_pipeline_lr}}))
test_dataloader = val_dataloader
benchmark = dict(name='CSRI (VDSR + CentreFace), SR input 20x16', row=14)
ablation = dict(sr_input_size={{_base_.lr_size}})  # what the SR head is fed (tests/test_configs.py checks it)
