"""Find and edit pipeline transforms by type, not by position.

Pipelines are lists of config dicts; tools, tests, benchmarks and
``--cfg-options`` lines used to address them by index
(``pipeline.3.cache_dir``), which breaks as soon as a step is added. These
helpers look a transform up by its registered type name (a scope prefix
such as ``mmaction.`` is ignored); configs and command lines edit one
through the datasets' ``pipeline_edits`` (:func:`apply_pipeline_edits`,
:func:`edit_key`, :func:`add_pipeline_edit`).
"""
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .config_checks import ConfigCheckError, check_transform_arguments

__all__ = ['transform_type', 'find_transform', 'transform_index',
           'apply_pipeline_edits', 'effective_pipeline', 'edit_key',
           'add_pipeline_edit', 'flow_cache_options']


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


def apply_pipeline_edits(pipeline: List, edits: Optional[Mapping],
                         where: str = 'dataset', log: bool = True) -> List:
    """Apply ``{type name: {key: value}}`` edits to a pipeline's transforms.

    Configs use this (through the datasets' ``pipeline_edits`` argument) to
    derive a variant from a family's pipeline without restating it, e.g.
    ``dict(BuildMMETargets=dict(norm='none'))``; on the command line,
    ``--cfg-options train_dataloader.dataset.pipeline_edits.ComputeFlow.
    cache_dir=X`` addresses a step by type. Edits are applied when the
    dataset is built, after every other override, and each changed value is
    logged.

    Args:
        pipeline (list): Transform configs (dicts).
        edits (Mapping, optional): Type name -> keys to set. None or empty:
            the pipeline is returned unchanged.
        where (str): Named in errors and the log (e.g. the annotation file).
        log (bool): Log each changed value. Defaults to True.

    Returns:
        list: A copy with the edits applied (``pipeline`` itself when there
        are none).

    Raises:
        ConfigCheckError: (a ``ValueError``) An edited type is absent or
            appears more than once, its step is not a config dict, an edit
            is not a dict of keys, or it sets an argument the transform
            does not accept or a value of a type its signature rules out
            (:func:`~mme_plugin.utils.config_checks.
            check_transform_arguments`).
    """
    if not edits:
        return pipeline
    out = list(pipeline)
    changes = []
    for type_name, updates in edits.items():
        if not isinstance(updates, Mapping):
            raise ConfigCheckError(
                f'{where}: pipeline_edits.{type_name} must be a dict of '
                f'arguments, got {updates!r}')
        try:
            i = transform_index(out, type_name)
        except KeyError as e:
            raise ConfigCheckError(
                f'{where}: pipeline_edits names {type_name}: '
                f'{e.args[0]}') from None
        if not isinstance(out[i], Mapping):
            raise ConfigCheckError(
                f'{where}: pipeline_edits.{type_name}: step {i} is a built '
                'transform, not a config dict; edit it before building')
        step = dict(out[i])
        check_transform_arguments(
            updates.get('type', step['type']), updates,
            lambda arg, t=type_name: f'pipeline_edits.{t}.{arg}', where)
        for key, value in updates.items():
            changes.append(f'{type_name}.{key}: {step.get(key, "<unset>")!r}'
                           f' -> {value!r}')
            step[key] = value
        out[i] = step
    if not log:
        return out
    try:
        from mmengine.logging import print_log
        print_log(f'{where}: pipeline_edits applied: ' + '; '.join(changes),
                  logger='current')
    except ImportError:  # pragma: no cover - mmengine is a dependency
        pass
    return out


def effective_pipeline(dataset_cfg: Mapping, log: bool = True) -> List:
    """The pipeline a dataset config will run: its ``pipeline`` with its
    ``pipeline_edits`` applied (what :class:`CheckedVideoDataset` and
    :class:`RepeatAugVideoDataset` build). Tools that inspect a config's
    transforms read this, not ``pipeline``.

    Args:
        dataset_cfg (Mapping): A dataloader's ``dataset`` config.
        log (bool): Log the edits. Defaults to True.

    Returns:
        list: Transform configs (copies where edited).
    """
    return apply_pipeline_edits(list(dataset_cfg['pipeline']),
                                dataset_cfg.get('pipeline_edits'),
                                str(dataset_cfg.get('ann_file', 'dataset')),
                                log)


def edit_key(type_name: str, key: str,
             dataset: str = 'train_dataloader.dataset') -> str:
    """The ``--cfg-options`` key that sets ``key`` of the ``type_name``
    transform through the dataset's ``pipeline_edits``, e.g.
    ``train_dataloader.dataset.pipeline_edits.ComputeFlow.cache_dir``. It
    needs no pipeline, does not depend on the step's position, and wins over
    the config's own ``pipeline_edits`` of that key.
    """
    return f'{dataset}.pipeline_edits.{type_name}.{key}'


def add_pipeline_edit(dataset_cfg: Dict, type_name: str,
                      **updates: Any) -> None:
    """Add ``updates`` of the ``type_name`` transform to a dataset config's
    ``pipeline_edits`` (in place; the config's own edits of other keys
    stay), e.g. to point a config's flow cache elsewhere.

    Args:
        dataset_cfg (dict): A dataloader's ``dataset`` config.
        type_name (str): The transform's type name.
        **updates: Arguments to set.
    """
    edits = dict(dataset_cfg.get('pipeline_edits') or {})
    edits[type_name] = dict(edits.get(type_name) or {}, **updates)
    dataset_cfg['pipeline_edits'] = edits


def flow_cache_options(dataset_cfg: Mapping, data_root: str,
                       dataset: str = 'train_dataloader.dataset'
                       ) -> Dict[str, str]:
    """``--cfg-options`` items that keep a dataset's flow cache under
    ``data_root`` (``<data_root>/flow_cache``, videos found under
    ``data_root``); none if its effective pipeline has no ``ComputeFlow``.

    Args:
        dataset_cfg (Mapping): A dataloader's ``dataset`` config.
        data_root (str): Where the videos are.
        dataset (str): The config key of ``dataset_cfg``. Defaults to
            ``'train_dataloader.dataset'``.

    Returns:
        dict: ``{key: value}``, for ``Config.merge_from_dict`` or as
        ``key=value`` items of ``--cfg-options``.
    """
    if find_transform(effective_pipeline(dataset_cfg), 'ComputeFlow',
                      required=False) is None:
        return {}
    return {edit_key('ComputeFlow', 'cache_dir', dataset):
            osp.join(data_root, 'flow_cache'),
            edit_key('ComputeFlow', 'data_root', dataset): data_root}
