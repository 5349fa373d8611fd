# SphereFace (sphere20a, A-Softmax m=4 with the lambda annealing hook) trained on CelebA's HR faces, all 10,177
# identities. The paper's Table 3 "SphereFace" row is this model: SphereFace did not converge when fine-tuned
# on TinyFace, so the authors deployed the CelebA-trained one (paper footnote 4).
_base_ = ['../_base_/models/sphereface20a.py', '../_base_/datasets/celeba_hr_bs256.py',
          '../_base_/schedules/sgd_iter28k.py']

benchmark = dict(name='SphereFace (FR only, CelebA-trained)')
