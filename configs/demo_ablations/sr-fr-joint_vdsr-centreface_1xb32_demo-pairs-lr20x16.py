# Ablation: SR-FR joint stage 1 with the synthetic LR at 20x16 into the SR head (the earlier input path).
# Everything else is configs/demo/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs.py.
_base_ = ['../demo/sr-fr-joint_vdsr-centreface_1xb32_demo-pairs.py', '../_base_/datasets/demo_sr-input-20x16.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.pair_train_pipeline_lr}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.native_test_pipeline_lr}}))
test_dataloader = val_dataloader
ablation = dict(sr_input_size={{_base_.lr_size}})  # what the SR head is fed (tests/test_configs.py checks it)
