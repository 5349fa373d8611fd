"""Training-time plugins: hooks (e.g. A-Softmax lambda annealing) and optimiser wrappers (per-part clipping)."""
from .hooks import *  # noqa: F401,F403
from .optim_wrappers import *  # noqa: F401,F403
