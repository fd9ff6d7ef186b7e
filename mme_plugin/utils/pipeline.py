"""Find and edit pipeline transforms by type, not by position.

Pipelines are lists of config dicts; tools, tests, benchmarks and
``--cfg-options`` lines used to address them by index
(``pipeline.3.cache_dir``), which breaks as soon as a step is added. These
helpers look a transform up by its registered type name (a scope prefix
such as ``mmaction.`` is ignored).
"""
from typing import Any, Dict, List, Optional, Sequence

__all__ = ['transform_type', 'find_transform', 'transform_index',
           'pipeline_key', 'pipeline_option', 'edit_transform']


def transform_type(step: Any) -> str:
    """The type name of a transform config (scope removed) or object."""
    if isinstance(step, dict):
        return str(step['type']).split('.')[-1]
    return type(step).__name__


def transform_index(pipeline: Sequence, type_name: str,
                    required: bool = True) -> Optional[int]:
    """Index of the only transform of ``type_name`` in ``pipeline``.

    Raises:
        KeyError: None found (when ``required``) or more than one.
    """
    found = [i for i, t in enumerate(pipeline)
             if transform_type(t) == type_name]
    if len(found) > 1:
        raise KeyError(f'{len(found)} {type_name} transforms in the pipeline '
                       f'(at {found}); address one by index')
    if not found:
        if required:
            raise KeyError(
                f'no {type_name} in the pipeline (it has: '
                f'{[transform_type(t) for t in pipeline]})')
        return None
    return found[0]


def find_transform(pipeline: Sequence, type_name: str,
                   required: bool = True) -> Optional[Dict]:
    """The only transform of ``type_name`` (see :func:`transform_index`)."""
    i = transform_index(pipeline, type_name, required)
    return None if i is None else pipeline[i]


def pipeline_key(pipeline: Sequence, type_name: str, key: str,
                 prefix: str = 'train_dataloader.dataset.pipeline') -> str:
    """The config key of ``key`` of the ``type_name`` transform, e.g.
    ``train_dataloader.dataset.pipeline.3.cache_dir``."""
    return f'{prefix}.{transform_index(pipeline, type_name)}.{key}'


def pipeline_option(pipeline: Sequence, type_name: str, key: str, value: Any,
                    prefix: str = 'train_dataloader.dataset.pipeline') -> str:
    """A ``--cfg-options`` item that sets ``key`` of the ``type_name``
    transform, e.g. ``train_dataloader.dataset.pipeline.3.cache_dir=X``."""
    return f'{pipeline_key(pipeline, type_name, key, prefix)}={value}'


def edit_transform(pipeline: List[Dict], type_name: str,
                   **updates: Any) -> List[Dict]:
    """A copy of ``pipeline`` whose ``type_name`` transform has ``updates``
    applied (the others are shallow copies)."""
    i = transform_index(pipeline, type_name)
    out = [dict(t) for t in pipeline]
    out[i].update(updates)
    return out
