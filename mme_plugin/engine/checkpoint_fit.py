"""Refuse checkpoints that do not fit the model instead of loading nothing.

mmengine's runner loads ``load_from`` (and the checkpoint of
``tools/test.py``) with ``strict=False`` and only logs the missing and
unexpected keys. So a test of an unconverted pretraining checkpoint printed
chance accuracy and exited 0, a checkpoint of another model size printed
0.0 and exited 0, and a doubly converted checkpoint (``backbone.backbone.*``)
fine-tuned from scratch. :func:`check_checkpoint_fits` turns these into
:class:`~mme_plugin.utils.state_diff.CheckpointMismatchError` naming the
keys and the command that fixes the checkpoint; :func:`patch_runner`
applies it to every checkpoint a stock mmengine ``Runner`` loads. The keys
are compared by :func:`~mme_plugin.utils.state_diff.diff_state_dicts`, as
in :func:`~mme_plugin.checkpoint.verify_state_dict` (the converters):

* always: every parameter under ``backbone.`` is in the checkpoint (missing
  fixed buffers, such as the sinusoid ``pos_embed`` that official
  checkpoints do not store, keep the model's values), no shape differs, and
  at least one model key matches;
* when testing (``Runner.test``): every parameter of the model is in the
  checkpoint (a classifier is needed to report accuracy) and no key is
  unexpected.
"""
import re
from collections import OrderedDict
from typing import Any, Dict, List

from mmengine.logging import print_log

from mme_plugin.utils.state_diff import (CheckpointMismatchError,
                                         diff_state_dicts)

__all__ = ['check_checkpoint_fits', 'patch_runner']

#: Saved originals of what :func:`patch_runner` replaced (originals only).
_ORIG: dict = {}
#: Runtime state of the patched runner: the checkpoint being loaded
#: (``source``) and whether ``Runner.test`` is running (``testing``).
_STATE: dict = {}


def _fix_hint(keys: List[str], source: str) -> str:
    """The command that turns a checkpoint of this layout into one that
    fits, judged from its keys."""
    if any(k.startswith('decoder.') for k in keys):
        return ('it is an MME pretraining checkpoint: convert it with '
                f'`python tools/convert/mme_to_recognizer.py {source} '
                'OUT.pth --config CONFIG` and fine-tune from OUT.pth')
    if any(k.startswith(('encoder.', 'patch_embed.proj', 'blocks.', 'head.'))
           for k in keys):
        return ('it is in the official MME/VideoMAE layout: convert it with '
                f'`python tools/convert/official_to_mmaction.py {source} '
                'OUT.pth --config CONFIG`')
    if any(k.startswith('backbone.backbone.') for k in keys):
        return ('its keys carry a doubled "backbone." prefix (converted '
                'twice?): use the original mmaction-layout checkpoint as it '
                'is')
    return ('use a config whose model matches the one that wrote it '
            '(embed_dims, depth, patch_size, num_frames, img_size, '
            'num_classes)')


def check_checkpoint_fits(model: Any, state: Dict[str, Any], source: str,
                          require_all: bool = False) -> None:
    """Raise if ``state`` does not fit ``model``.

    Args:
        model (nn.Module): The (unwrapped) model.
        state (dict): The checkpoint's state dict, keys as the model's.
        source (str): Checkpoint path, for messages.
        require_all (bool): Every model parameter must be present and no key
            unexpected (testing). Defaults to False.

    Raises:
        CheckpointMismatchError: Naming missing / unexpected / mismatched
            keys and the fix.
    """
    params = {n for n, _ in model.named_parameters()}
    keys = list(state)
    diff = diff_state_dicts(model.state_dict(), state)
    missing = diff.missing_in(params)  # fixed buffers keep the model's
    unexpected = diff.unexpected
    mismatched = diff.mismatch_lines()
    problems = []
    if not diff.matched:
        problems.append(f'none of its {len(keys)} keys is a model key '
                        f'(e.g. {keys[:3]})')
    bad_missing = (missing if require_all else
                   [k for k in missing if k.startswith('backbone.')])
    if bad_missing:
        problems.append(f'missing {len(bad_missing)} model parameters, e.g. '
                        f'{bad_missing[:5]}')
    if require_all and unexpected:
        problems.append(f'{len(unexpected)} unexpected keys, e.g. '
                        f'{unexpected[:5]}')
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatches, e.g. '
                        f'{mismatched[:3]}')
    if problems:
        why = ' | '.join(problems)
        hint = _fix_hint(keys, source)
        if require_all and missing and not unexpected and all(
                k.startswith(('cls_head.', 'head.')) for k in missing) \
                and not mismatched:
            hint = ('it has no classifier: fine-tune it first (a backbone '
                    'checkpoint cannot be tested)')
        raise CheckpointMismatchError(
            f'{source} does not fit the model: {why}. Fix: {hint}.')
    if unexpected:
        print_log(f'{source}: {len(unexpected)} checkpoint keys are not used '
                  f'by the model (e.g. {unexpected[:5]})', logger='current',
                  level=30)


def _load_checkpoint_to_model(model: Any,
                              checkpoint: Any,
                              strict: bool = False,
                              logger: Any = None,
                              revise_keys: list = [(r'^module\.', '')]
                              ) -> Any:
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else checkpoint
    for pattern, repl in revise_keys:
        state = OrderedDict(
            (re.sub(pattern, repl, k), v) for k, v in state.items())
    check_checkpoint_fits(model, state, _STATE.get('source', 'checkpoint'),
                          require_all=_STATE.get('testing', False))
    return _ORIG['to_model'](model, checkpoint, strict, logger, revise_keys)


def _runner_load_checkpoint(self, filename: str, *args: Any,
                            **kwargs: Any) -> Any:
    _STATE['source'] = filename
    try:
        return _ORIG['load_checkpoint'](self, filename, *args, **kwargs)
    finally:
        _STATE.pop('source', None)


def _test(self) -> Any:
    _STATE['testing'] = True
    try:
        return _ORIG['test'](self)
    finally:
        _STATE['testing'] = False


def patch_runner() -> None:
    """Check every checkpoint a ``Runner`` loads (idempotent)."""
    import mmengine.runner.runner as runner_mod
    if 'to_model' in _ORIG:
        return
    _ORIG['to_model'] = runner_mod._load_checkpoint_to_model
    _ORIG['load_checkpoint'] = runner_mod.Runner.load_checkpoint
    _ORIG['test'] = runner_mod.Runner.test
    runner_mod._load_checkpoint_to_model = _load_checkpoint_to_model
    runner_mod.Runner.load_checkpoint = _runner_load_checkpoint
    runner_mod.Runner.test = _test
