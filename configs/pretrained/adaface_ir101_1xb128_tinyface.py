# AdaFace ir_101 (MS1MV2, MS1MV3, WebFace4M or WebFace12M release) on TinyFace. AdaFace's ir_101 is the
# 100-layer IR net (units 3, 13, 30, 3), hence --depth 100.
#   python tools/model_converters/adaface_ir.py adaface_ir101_webface12m.ckpt ir101.pth --depth 100
#   python tools/test.py configs/pretrained/adaface_ir101_1xb128_tinyface.py ir101.pth
_base_ = ['../_base_/models/adaface_ir.py', '../_base_/datasets/tinyface_112x112_test.py',
          '../_base_/default_runtime.py']

model = dict(backbone=dict(depth=100))
