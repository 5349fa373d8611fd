# arcface_torch iresnet100 (any of its released training sets: the architecture is the same) on TinyFace.
#   python tools/model_converters/insightface_iresnet.py backbone.pth iresnet100.pth --depth 100
#   python tools/test.py configs/pretrained/arcface-torch_iresnet100_1xb128_tinyface.py iresnet100.pth
_base_ = ['../_base_/models/iresnet_arcface-torch.py', '../_base_/datasets/tinyface_112x112_test.py',
          '../_base_/default_runtime.py']

model = dict(backbone=dict(depth=100))
