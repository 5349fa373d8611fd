"""Training-time plugins: hooks (e.g. A-Softmax lambda annealing)."""
from .hooks import *  # noqa: F401,F403
