"""Catch ``--cfg-options`` that would not do what they say: paths split at
a comma, and positional pipeline overrides that the config's own
``pipeline_edits`` would discard."""
import re
from typing import Any, Dict, Mapping, Optional

from .config_checks import ConfigCheckError, check_transform_arguments
from .pipeline import transform_type

__all__ = ['check_path_options', 'check_pipeline_options']

#: ``<dataset key>.pipeline.<index>.<argument>[.<sub key>]``
_POSITIONAL = re.compile(
    r'^(?P<ds>.+)\.pipeline\.(?P<i>\d+)\.(?P<arg>[^.]+)(?P<rest>\..+)?$')

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


def _lookup(cfg: Any, key: str) -> Any:
    """The value at dotted ``key`` (list items by index), or None."""
    node = cfg
    for part in key.split('.'):
        if isinstance(node, Mapping) or hasattr(node, 'to_dict'):  # Config
            node = node.get(part)
        elif isinstance(node, (list, tuple)) and part.isdigit() and \
                int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _typed(value: Any) -> str:
    """``value`` as it would be typed after ``key=``."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_typed(v) for v in value)
        return f'({inner})' if isinstance(value, tuple) else f'[{inner}]'
    return str(value)


def check_pipeline_options(cfg: Mapping,
                           options: Optional[Dict[str, Any]]) -> None:
    """Refuse positional pipeline overrides that ``pipeline_edits`` undo.

    mmaction's convention, ``--cfg-options train_dataloader.dataset.
    pipeline.3.cache_dir=X``, sets the 4th step's argument in ``pipeline``;
    the dataset then applies its ``pipeline_edits`` on top, so where the
    config's edits set the same argument of that step the typed value would
    be silently discarded. That is an error showing the ``pipeline_edits``
    form, which wins. A positional override of an argument no edit touches
    is kept. The argument is also checked against the transform's
    signature (:func:`~mme_plugin.utils.config_checks.
    check_transform_arguments`).

    Args:
        cfg (Mapping): The config with ``options`` already merged.
        options (dict, optional): Parsed ``--cfg-options``.

    Raises:
        SystemExit: Naming the option, the edit that would win and the
            option to use instead, or the bad argument.
    """
    for key, value in (options or {}).items():
        match = _POSITIONAL.match(key)
        if not match:
            continue
        ds_key, index = match['ds'], int(match['i'])
        arg, rest = match['arg'], match['rest'] or ''
        dataset = _lookup(cfg, ds_key)
        if not isinstance(dataset, Mapping):
            continue
        steps = dataset.get('pipeline') or []
        if index >= len(steps) or not isinstance(steps[index], Mapping):
            raise SystemExit(
                f'error: --cfg-options {key}: {ds_key}.pipeline has '
                f'{len(steps)} steps ('
                f'{[transform_type(t) for t in steps]}); address the step '
                f'by type: {ds_key}.pipeline_edits.<Type>.{arg}=...')
        type_name = transform_type(steps[index])
        use = f'{ds_key}.pipeline_edits.{type_name}.{arg}{rest}'
        if not rest:
            try:
                check_transform_arguments(
                    steps[index]['type'], {arg: value},
                    lambda a: f'--cfg-options {key}', ds_key)
            except ConfigCheckError as e:
                raise SystemExit(f'error: {e}') from None
        edit = (dataset.get('pipeline_edits') or {}).get(type_name) or {}
        if arg not in edit:
            continue
        typed, kept = _lookup(steps[index], arg + rest), _lookup(edit,
                                                                arg + rest)
        if typed == kept:
            continue  # the edit sets what was typed: nothing is lost
        raise SystemExit(
            f'error: --cfg-options {key}={_typed(value)}: the config sets '
            f'{ds_key}.pipeline_edits.{type_name}.{arg} = {edit[arg]!r}, '
            f'which the dataset applies after the pipeline, so this '
            f'positional value would be discarded. Address the step by '
            f'type instead: --cfg-options {use}={_typed(value)}')
