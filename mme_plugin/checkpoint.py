"""Checkpoint conversion and verification helpers.

Layouts handled:

* ``mme``: our pretraining checkpoints (``state_dict`` of :class:`MME`:
  ``backbone.*``, ``decoder.*``);
* ``recognizer``: mmaction recognizers (``backbone.*``, ``cls_head.*``);
* ``official``: the MME / VideoMAE release (``encoder.`` prefix,
  ``patch_embed.proj``, ``mlp.fc1/fc2``, ``head``; optionally wrapped in
  ``module`` / ``model`` by DeepSpeed).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
from torch import nn

__all__ = [
    'CheckpointMismatchError', 'load_state_dict_any', 'extract_prefix',
    'verify_state_dict', 'official_to_mmaction', 'mmaction_to_official'
]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is meant for."""


def load_state_dict_any(path: str) -> Dict[str, torch.Tensor]:
    """Load a checkpoint file and unwrap ``state_dict`` / ``module`` /
    ``model`` containers (mmengine, DeepSpeed and timm-style files).

    Args:
        path (str): Checkpoint path (trusted file: loaded with
            ``weights_only=False``).

    Returns:
        dict[str, Tensor]: The flat state dict.
    """
    obj = torch.load(path, map_location='cpu', weights_only=False)
    for key in ('state_dict', 'module', 'model'):
        if isinstance(obj, dict) and key in obj and isinstance(
                obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatchError(
            f'{path}: no state dict of tensors found (keys: '
            f'{list(obj)[:8] if isinstance(obj, dict) else type(obj)})')
    return OrderedDict(obj)


def extract_prefix(state: Dict[str, torch.Tensor], prefix: str,
                   new_prefix: str = '') -> Dict[str, torch.Tensor]:
    """Keep keys starting with ``prefix`` and replace it by ``new_prefix``."""
    return OrderedDict((new_prefix + k[len(prefix):], v)
                       for k, v in state.items() if k.startswith(prefix))


def verify_state_dict(state: Dict[str, torch.Tensor], model: nn.Module,
                      prefix: str = 'backbone.',
                      source: str = 'checkpoint'
                      ) -> Tuple[List[str], List[str], List[str]]:
    """Check that ``state`` covers ``model``'s keys under ``prefix``.

    Missing *buffers* under ``prefix`` (the fixed sinusoid ``pos_embed``,
    which the official checkpoints do not store) are filled into ``state``
    from the model, in place; missing parameters are errors.

    Args:
        state (dict): Candidate state dict (model key names).
        model (nn.Module): Target model.
        prefix (str): Only keys under this prefix must be covered.
        source (str): Name of the checkpoint for messages.

    Returns:
        tuple[list[str], list[str], list[str]]: Missing keys outside
        ``prefix`` (e.g. the new classifier), unexpected keys, and the
        buffers filled from the model.

    Raises:
        CheckpointMismatchError: On a missing key under ``prefix`` or on any
            shape mismatch, naming keys, shapes and the likely fix.
    """
    target = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    filled = [k for k in target if k not in state and k.startswith(prefix)
              and k not in params]
    for key in filled:
        state[key] = target[key].clone()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    bad_missing = [k for k in missing if k.startswith(prefix)]
    mismatched = [
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(target[k].shape)}' for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    if bad_missing or mismatched:
        lines = []
        if bad_missing:
            lines.append(f'missing {len(bad_missing)} keys under {prefix!r}: '
                         f'{bad_missing[:6]}')
        if mismatched:
            lines.append('shape mismatch: ' + '; '.join(mismatched[:6]))
        raise CheckpointMismatchError(
            f'{source} does not fit the model: ' + ' | '.join(lines) +
            '. Use a config whose backbone matches the pretraining one '
            '(embed_dims, depth, patch_size, num_frames, img_size), or '
            'convert the checkpoint layout first (tools/convert/).')
    return [k for k in missing if not k.startswith(prefix)], unexpected, \
        filled


_OFFICIAL_RULES = [
    (r'^patch_embed\.proj\.', 'patch_embed.projection.'),
    (r'\.mlp\.fc1\.', '.mlp.layers.0.0.'),
    (r'\.mlp\.fc2\.', '.mlp.layers.1.'),
]


def official_to_mmaction(state: Dict[str, torch.Tensor],
                         head_prefix: str = 'cls_head.fc_cls.'
                         ) -> Dict[str, torch.Tensor]:
    """Official MME / VideoMAE keys -> mmaction recognizer keys.

    ``encoder.`` is dropped (pretraining checkpoints), ``module.`` too
    (DeepSpeed), ``head.*`` becomes ``cls_head.fc_cls.*``, the rest goes
    under ``backbone.``. Decoder keys of pretraining checkpoints
    (``decoder*``, ``encoder_to_decoder``, ``mask_token``) are dropped.
    """
    out = OrderedDict()
    for key, value in state.items():
        k = re.sub(r'^module\.', '', key)
        if k.startswith(('decoder', 'encoder_to_decoder', 'mask_token')):
            continue
        k = re.sub(r'^encoder\.', '', k)
        if k.startswith('head.'):
            out[head_prefix + k[len('head.'):]] = value
            continue
        for pattern, repl in _OFFICIAL_RULES:
            k = re.sub(pattern, repl, k)
        out['backbone.' + k] = value
    return out


def mmaction_to_official(state: Dict[str, torch.Tensor],
                         encoder_prefix: str = ''
                         ) -> Dict[str, torch.Tensor]:
    """mmaction recognizer / backbone keys -> official MME / VideoMAE keys.

    Args:
        state (dict): Keys ``backbone.*`` (and ``cls_head.fc_cls.*``).
        encoder_prefix (str): ``'encoder.'`` for the pretraining layout,
            ``''`` for the fine-tune layout. Defaults to ``''``.
    """
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('cls_head.fc_cls.'):
            out['head.' + key[len('cls_head.fc_cls.'):]] = value
            continue
        if not key.startswith('backbone.'):
            continue
        k = key[len('backbone.'):]
        k = re.sub(r'^patch_embed\.projection\.', 'patch_embed.proj.', k)
        k = re.sub(r'\.mlp\.layers\.0\.0\.', '.mlp.fc1.', k)
        k = re.sub(r'\.mlp\.layers\.1\.', '.mlp.fc2.', k)
        out[encoder_prefix + k] = value
    return out
