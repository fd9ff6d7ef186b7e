"""MME (Masked Motion Encoding, CVPR 2023) as an MMAction2 / MMEngine plugin.

The compatibility shims are applied first, before anything imports
``mmaction.models`` (see :mod:`mme_plugin.compat`).
"""
from . import compat

compat.apply_all()

from .registry import SCOPE  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'SCOPE']
