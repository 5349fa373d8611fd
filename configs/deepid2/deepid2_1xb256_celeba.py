# FR only, step 1 (LRFR paper Fig. 5a): DeepID2 (softmax identification) pre-trained on CelebA's HR faces, all
# 10,177 identities; caffe-face's schedule at lr 0.01 (a plain net without normalisation, as VGGFace).
_base_ = ['../_base_/models/deepid2.py', '../_base_/datasets/celeba_hr_bs256.py',
          '../_base_/schedules/sgd_iter28k.py']

optim_wrapper = dict(optimizer=dict(lr=0.01))
