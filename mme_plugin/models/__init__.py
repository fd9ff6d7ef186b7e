"""Models of the MME plugin."""
from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .target_generators import *  # noqa: F401,F403
from .targets import *  # noqa: F401,F403
from .algorithms import __all__ as _alg
from .backbones import __all__ as _bb
from .data_preprocessors import __all__ as _dp
from .heads import __all__ as _heads
from .losses import __all__ as _losses
from .target_generators import __all__ as _generators
from .targets import __all__ as _targets

__all__ = [*_alg, *_bb, *_dp, *_heads, *_losses, *_generators,
           *_targets]
