# FR only, step 1 (paper Fig. 5a): pre-train CentreFace on the auxiliary HR faces (CelebA's role in the demo).
_base_ = ['../_base_/models/centreface_demo.py', '../_base_/datasets/demo_hr.py',
          '../_base_/schedules/demo_iter300.py']
