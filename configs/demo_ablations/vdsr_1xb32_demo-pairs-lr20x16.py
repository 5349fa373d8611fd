# Ablation (issue: SR input at native resolution): VDSR alone trained on synthetic 20x16 LR faces fed to the SR
# head at 20x16, as lrfr did before its SR heads got interpolated-LR input (ILR, VDSR's own recipe) at the FR
# size. Everything else is configs/demo/vdsr_1xb32_demo-pairs.py. See docs/benchmark.md, "SR input".
_base_ = ['../demo/vdsr_1xb32_demo-pairs.py', '../_base_/datasets/demo_sr-input-20x16.py']

train_dataloader = dict(dataset=dict(pipeline={{_base_.pair_train_pipeline_lr}}))
ablation = dict(sr_input_size={{_base_.lr_size}})  # what the SR head is fed (tests/test_configs.py checks it)
