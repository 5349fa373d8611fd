"""lrfr's registries: children of mmengine's root registries with scope ``lrfr``.

Configs name lrfr modules bare (``type='TinyFaceDataset'``) and other OpenMMLab
modules by scope (``type='mmpretrain.ResNet'``). ``locations`` lets a registry
import the package that fills it the first time it is searched, so building a
config never depends on the caller having imported the right submodule. The
stack fixes of ``lrfr.compat`` are not part of that: programs call
``lrfr.utils.register_all_modules()`` (docs/compat.md).
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import Registry

# Datasets, e.g. TinyFaceDataset, CelebADataset.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['lrfr.datasets'])
# Samplers, e.g. MultiBranchSampler (a fixed share of each branch per batch).
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['lrfr.datasets'])
# Data transforms, e.g. LoadFaceImage, BicubicDownsample, PackFaceInputs.
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, locations=['lrfr.datasets'])

# Networks and their parts, e.g. VDSR, CentreFaceNet, ArcFaceHead, CSRI.
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['lrfr.models'])
# Model wrappers, e.g. MMDistributedDataParallel (from mmengine).
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['lrfr.models'])

# Metrics, e.g. IdentificationMetric (TinyFace 1:N), VerificationMetric (1:1).
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['lrfr.evaluation'])
# Evaluators (mmengine's Evaluator is enough so far).
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['lrfr.evaluation'])

# Hooks, e.g. ASoftmaxLambdaHook (A-Softmax lambda annealing).
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['lrfr.engine'])
# Loops (mmengine's loops are enough so far).
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['lrfr.engine'])
# Optimizer wrappers (mmengine's OptimWrapper / AmpOptimWrapper).
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['lrfr.engine'])
# Optimizers and their constructors (torch's SGD/Adam through mmengine).
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['lrfr.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, locations=['lrfr.engine'])
# Parameter schedulers (mmengine's MultiStepLR, CosineAnnealingLR, ...).
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['lrfr.engine'])

# Visualizers and their backends (mmengine's Visualizer, LocalVisBackend).
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS, locations=['lrfr.engine'])
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS, locations=['lrfr.engine'])

# Weight initialisers (mmengine's Pretrained, Kaiming, ...) and log processors.
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, locations=['lrfr.models'])
LOG_PROCESSORS = Registry('log_processor', parent=MMENGINE_LOG_PROCESSORS, locations=['lrfr.engine'])
