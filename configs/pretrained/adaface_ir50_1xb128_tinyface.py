# AdaFace ir_50 (MS1MV2, WebFace4M or CASIA-WebFace release: the architecture is the same) on TinyFace.
#   python tools/model_converters/adaface_ir.py adaface_ir50_ms1mv2.ckpt ir50.pth --depth 50
#   python tools/test.py configs/pretrained/adaface_ir50_1xb128_tinyface.py ir50.pth
_base_ = ['../_base_/models/adaface_ir.py', '../_base_/datasets/tinyface_112x112_test.py',
          '../_base_/default_runtime.py']

model = dict(backbone=dict(depth=50))
