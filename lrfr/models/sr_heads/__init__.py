"""SR heads: LR image ``(N, C, h, w)`` -> SR image ``(N, C, *output_size)`` at the FR input size."""
from .base_sr import PreUpsampleSR
from .drrn import DRRN
from .srcnn import SRCNN
from .vdsr import VDSR

__all__ = ['PreUpsampleSR', 'SRCNN', 'VDSR', 'DRRN']
