"""Shim: placeholder ``drn`` modules for the mmaction2 1.2.0 wheel.

The wheel lacks ``mmaction/models/localizers/drn`` (upstream issue
open-mmlab/mmaction2#2714), so ``import mmaction.models`` fails. We insert
placeholder modules, only when the real package is missing
(``docs/stack_notes.md``, breakage 1).
"""
import importlib.util
import os
import sys
import types
from typing import Any

__all__ = ['patch_missing_drn']

_DRN_MODULES = ('mmaction.models.localizers.drn',
                'mmaction.models.localizers.drn.drn')


def _real_drn_missing() -> bool:
    """Whether the installed mmaction lacks the ``drn`` localizer package.

    Looks at the files only: ``find_spec`` of a submodule would import
    ``mmaction.models``, which is exactly what fails.

    Returns:
        bool: True if mmaction is installed without ``localizers/drn``.
    """
    spec = importlib.util.find_spec('mmaction')
    if spec is None or not spec.submodule_search_locations:
        return False
    for root in spec.submodule_search_locations:
        localizers = os.path.join(root, 'models', 'localizers')
        if os.path.isdir(localizers):
            return not os.path.isdir(os.path.join(localizers, 'drn'))
    return False


def patch_missing_drn() -> bool:
    """Register placeholder ``drn`` modules if mmaction's wheel lacks them.

    Returns:
        bool: True if placeholders were inserted, False if nothing was needed.
    """
    if _DRN_MODULES[1] in sys.modules or not _real_drn_missing():
        return False

    class DRN:  # noqa: D401 - placeholder
        """Placeholder for mmaction's DRN localizer (absent from the wheel)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ImportError(
                'mmaction.models.localizers.drn is missing from the mmaction2 '
                '1.2.0 wheel (open-mmlab/mmaction2#2714); install mmaction2 '
                'from source to use DRN.')

    pkg = types.ModuleType(_DRN_MODULES[0])
    pkg.__path__ = []  # mark as package
    mod = types.ModuleType(_DRN_MODULES[1])
    mod.DRN = DRN
    pkg.drn = mod
    pkg.DRN = DRN
    sys.modules[_DRN_MODULES[0]] = pkg
    sys.modules[_DRN_MODULES[1]] = mod
    return True
