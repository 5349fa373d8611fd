# SR only (LRFR paper Fig. 5b, step 1): DRRN trained on CelebA LR/HR pairs (20x16 -> 112x96) with the per-image
# Euclidean loss; PSNR/SSIM on the held-out CelebA test partition. Its weights feed the independent SR-FR configs
# (sr-fr-indep_drrn-*), which load them into their frozen SR head.
_base_ = ['../_base_/models/drrn.py', '../_base_/datasets/celeba_pairs_bs64.py',
          '../_base_/schedules/adam_iter28k.py']

model = dict(type='SuperResolver', sr={{_base_.sr_head}},
             data_preprocessor=dict(type='FaceDataPreprocessor', mean=127.5, std=128.0))
