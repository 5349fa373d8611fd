# CelebA LR/HR pairs for SR-only training (paper Fig. 5b, step 1), 64 pairs per batch (VDSR's batch size).
# Trained on the official train partition and tested on the identity-disjoint test partition (19,962 pairs), so
# the SR quality is measured on unseen faces: PSNR/SSIM on the Y channel, as SR papers report them
# (SRQualityMetric maps the normalised SR output back to 0..255 with the preprocessor's mean/std). The paper
# trained its SR models on all 202,599 pairs (train_dataloader.dataset.split='all'; the PSNR is then on
# training faces).
_base_ = './celeba_pairs_bs256.py'

train_batch_size = 64
train_dataloader = dict(batch_size=train_batch_size, dataset=dict(split='train'))
auto_scale_lr = dict(base_batch_size=train_batch_size)
val_dataloader = dict(
    dataset=dict(_delete_=True, type='CelebADataset', data_root={{_base_.celeba_root}}, split='test',
                 branch='syn', pipeline={{_base_.pair_test_pipeline}}))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='SRQualityMetric', mean=127.5, std=128.0, y_channel=True)
test_evaluator = val_evaluator
