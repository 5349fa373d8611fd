# CSRI (LRFR paper §3, eq. 4: L = L_fr_syn + L_fr_nat + 0.003 L_sr) on a modern face recogniser: a VDSR-20 SR
# head in front of an IResNet-50 at 112x112, fine-tuned from a public pretrained model converted with
# tools/model_converters/insightface_iresnet.py (arcface_torch's ms1mv3_arcface_r50 backbone.pth; only its
# `backbone.` weights are in the converted file, so the SR head and both classifiers start fresh). Both
# classifiers are AdaFace heads (m = 0.4, h = 0.333, s = 64): the synthetic one over the 85,742 MS1MV2 identities
# of the HR .rec set, the native one over TinyFace's 2,570. Data: rec-tinyface_csri_112x112_bs256.py (degraded
# MS1MV2 faces + native TinyFace, 128 + 128 per batch). Schedule: lrfr's CSRI fine-tuning (SGD lr 0.01, 4k
# iterations, warm-up). RGB input, (x - 127.5) / 127.5, as the arcface_torch model was trained.
_base_ = ['../_base_/datasets/rec-tinyface_csri_112x112_bs256.py', '../_base_/schedules/sgd-finetune_iter4k.py']

model = dict(
    type='CSRI',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=127.5, to_rgb=True),
    sr=dict(type='VDSR', mid_channels=64, num_layers=20, output_size=(112, 112)),
    backbone=dict(type='IResNet', depth=50, input_size=(112, 112), embed_dim=512),
    head=dict(type='AdaFaceHead', num_classes=85742, in_channels=512, margin=0.4, h=0.333),
    native_head=dict(type='AdaFaceHead', num_classes=2570, in_channels=512, margin=0.4, h=0.333),
    lambda_sr=0.003,
)
# the fresh SR head is clipped on its own (as VDSR trains); the pretrained IResNet's clip is a safety net
optim_wrapper = dict(clip_grad=dict(max_norm=40.0, parts=dict(sr=dict(max_norm=10.0))))
load_from = 'checkpoints/arcface-torch_iresnet50_ms1mv3_lrfr.pth'  # the converter's output: see docs/model_zoo.md
