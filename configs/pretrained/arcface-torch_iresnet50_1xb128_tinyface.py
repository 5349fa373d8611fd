# arcface_torch iresnet50 (any of its released training sets: the architecture is the same) on TinyFace.
#   python tools/model_converters/insightface_iresnet.py backbone.pth iresnet50.pth --depth 50
#   python tools/test.py configs/pretrained/arcface-torch_iresnet50_1xb128_tinyface.py iresnet50.pth
_base_ = ['../_base_/models/iresnet_arcface-torch.py', '../_base_/datasets/tinyface_112x112_test.py',
          '../_base_/default_runtime.py']

model = dict(backbone=dict(depth=50))
