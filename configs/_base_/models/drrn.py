# DRRN (Tai et al., CVPR 2017), B1U25: one recursive block of 25 residual units, 128 channels, 52 layers,
# pre-activated by BN + ReLU as in the authors' Caffe model, with global residual learning: LR (20x16) -> SR at
# the 112x96 FR input. Only the SR head: combine it with SuperResolver or SRFaceRecognizer in the config.
sr_head = dict(type='DRRN', mid_channels=128, num_blocks=1, num_units=25, output_size=(112, 96))
