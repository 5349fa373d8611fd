# Reference row of the demo table: the FR-only model of centreface_1xb32_demo-hr-native.py at its random
# initialisation (seeded by randomness.seed), never trained. run_benchmark.py tests it with
# tools/test.py --random-init; every trained row must beat it with its 95 % interval above zero.
_base_ = ['./centreface_1xb32_demo-hr-native.py']

load_from = None
benchmark = dict(_delete_=True, name='CentreFace untrained (reference)', row=0, reference=True, train=False)
