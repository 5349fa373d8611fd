# VGG-Face (Parkhi et al., BMVC 2015): VGG-16 with fc6/fc7 of 4,096 and dropout 0.5, fc6 sized to the 112x96
# input the LRFR paper uses for every FR model; the embedding is fc7. Softmax over the 10,177 CelebA identities.
model = dict(
    type='FaceRecognizer',
    data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0),
    backbone=dict(type='VGGFace', input_size=(112, 96), fc_dim=4096, dropout=0.5),
    head=dict(type='SoftmaxHead', in_channels=4096, num_classes=10177),
)
