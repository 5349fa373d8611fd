# FR only, step 1 (LRFR paper Fig. 5a): VGGFace pre-trained on CelebA's HR faces, all 10,177 identities.
# caffe-face's schedule at VGG-Face's own learning rate, 0.01 (Parkhi et al.): the plain 16-layer net without
# normalisation diverges at 0.1.
_base_ = ['../_base_/models/vggface.py', '../_base_/datasets/celeba_hr_bs256.py',
          '../_base_/schedules/sgd_iter28k.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
