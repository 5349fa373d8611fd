"""Models: SR heads, FR backbones, necks, classification heads/losses, recognisers."""
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .fr_heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .recognizers import *  # noqa: F401,F403
from .sr_heads import *  # noqa: F401,F403
