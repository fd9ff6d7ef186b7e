"""Catch paths that ``--cfg-options`` split at a comma."""
from typing import Any, Dict, Optional

__all__ = ['check_path_options']

_PATH_SUFFIXES = ('_file', '_dir', '_root', '_from', 'path', 'video',
                  'checkpoint', 'filename')


def check_path_options(options: Optional[Dict[str, Any]]) -> None:
    """Raise if a path-like ``--cfg-options`` value became a list.

    mmengine's ``DictAction`` splits every value at commas, quoted or not,
    so ``ann_file=data/a,b.txt`` arrives as ``['data/a', 'b.txt']`` and
    fails later inside a library. Keys that name paths (ending in
    ``_file``, ``_dir``, ``_root``, ``_from``, ``path``, ``video``,
    ``checkpoint`` or ``filename``) must be strings.

    Args:
        options (dict, optional): Parsed ``--cfg-options``.

    Raises:
        SystemExit: Naming the key, what mmengine made of it and the fix.
    """
    for key, value in (options or {}).items():
        if isinstance(value, (list, tuple)) and key.split('.')[-1].endswith(
                _PATH_SUFFIXES):
            joined = ','.join(map(str, value))
            raise SystemExit(
                f'error: --cfg-options {key}={joined}: mmengine splits option'
                f' values at commas (even quoted), so this path became the '
                f'list {list(value)}. Rename or symlink the path without a '
                'comma, or set it in a small config that inherits this one '
                f"(_base_ = ['THIS_CONFIG.py'] and the {key.split('.')[-1]} "
                'set there).')
