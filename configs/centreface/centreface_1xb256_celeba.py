# FR only, step 1 (LRFR paper Fig. 5a): CentreFace (softmax + centre loss) pre-trained on CelebA's HR faces,
# all 10,177 identities, with caffe-face's solver. Its TinyFace test is CelebA-only CentreFace.
_base_ = ['../_base_/models/centreface.py', '../_base_/datasets/celeba_hr_bs256.py',
          '../_base_/schedules/sgd_iter28k.py']
