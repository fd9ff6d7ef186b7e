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
    'verify_state_dict', 'official_to_mmaction', 'mmaction_to_official',
    'hog_head_permutation', 'FINAL_NORM_RULE'
]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is meant for."""


def load_state_dict_any(path: str) -> Dict[str, torch.Tensor]:
    """Load a checkpoint file and unwrap ``state_dict`` / ``module`` /
    ``model`` containers (mmengine, DeepSpeed and timm-style files).

    Args:
        path (str): Checkpoint path (loaded without running code from it:
            :func:`~mme_plugin.engine.safe_load.safe_torch_load`).

    Returns:
        dict[str, Tensor]: The flat state dict.
    """
    from mme_plugin.engine.safe_load import safe_torch_load
    obj = safe_torch_load(path, map_location='cpu')
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


# Block key renames, one table for both directions: (where the name must
# start: key start or after a dot, official name, mmaction name).
_RENAMES = [
    (r'^', 'patch_embed.proj.', 'patch_embed.projection.'),
    (r'(?<=\.)', 'mlp.fc1.', 'mlp.layers.0.0.'),
    (r'(?<=\.)', 'mlp.fc2.', 'mlp.layers.1.'),
]
# Official MME decoder heads, in the release's order (target 'idt':
# decoder_num_classes = [hog, traj]).
_MME_HEADS = ('hog', 'traj')

#: What the pretrained final LayerNorm becomes (printed by the converter).
FINAL_NORM_RULE = (
    "the pretrained encoder's final LayerNorm (official 'encoder.norm', this "
    "project's 'backbone.fc_norm') becomes the recognizer's 'fc_norm' (the "
    'LayerNorm on the mean-pooled feature), as this project pretrains it; '
    "--fresh-fc-norm starts fc_norm at weight 1, bias 0 as the release's "
    'fine-tuning does')


def _block_keys(key: str) -> str:
    """Official block key -> mmaction block key (:data:`_RENAMES`)."""
    for lead, official, ours in _RENAMES:
        key = re.sub(lead + re.escape(official), ours, key)
    return key


def _block_keys_back(key: str) -> str:
    """mmaction block key -> official block key (:data:`_RENAMES`)."""
    for lead, official, ours in _RENAMES:
        key = re.sub(lead + re.escape(ours), official, key)
    return key


def hog_head_permutation(points: int, channels: int = 3,
                         nbins: int = 9) -> torch.Tensor:
    """Index map from the release's static-HOG token layout to this
    project's.

    The release lays a token's HOG out as (channel, bin, cell row, cell
    column) (``rearrange(... -> (c h2 w2))`` of a ``channel x bin`` map); this
    project as (step, cell row, cell column, channel, bin) with one step for
    static HOG. ``ours = release[perm]``.

    Args:
        points (int): Cells per token (2 x 2 = 4 in the release).
        channels (int): Colour channels of the HOG (3: rgb).
        nbins (int): Orientation bins (9).

    Returns:
        Tensor: ``[points * channels * nbins]`` long indices.
    """
    release = torch.arange(points * channels * nbins).reshape(
        channels * nbins, points)
    return release.t().reshape(-1)


def _is_mmaction_layout(state: Dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(('backbone.', 'cls_head.', 'decoder.heads.'))
               for k in state)


def official_to_mmaction(state: Dict[str, torch.Tensor],
                         head_prefix: str = 'cls_head.fc_cls.',
                         fresh_fc_norm: bool = False,
                         keep_decoder: bool = False
                         ) -> Dict[str, torch.Tensor]:
    """Official MME / VideoMAE keys -> mmaction keys.

    Handles the fine-tune layout (``patch_embed.proj``, ``blocks``,
    ``fc_norm``, ``head``), the pretraining layouts (``encoder.*`` with its
    final ``encoder.norm``; MME's ``decoder.0.*`` / ``encoder_to_decoder.0``
    with two heads, VideoMAE's ``decoder.*`` with one), and the DeepSpeed /
    DDP ``module.`` prefix. The final LayerNorm follows
    :data:`FINAL_NORM_RULE`. Decoder weights are dropped unless
    ``keep_decoder`` (then they map onto :class:`MMEDecoder`: the MME heads
    become ``hog`` and ``traj``, the HOG head reordered by
    :func:`hog_head_permutation`; VideoMAE's becomes ``pixel``).

    Args:
        state (dict): Official state dict.
        head_prefix (str): Where the fine-tune ``head`` goes.
        fresh_fc_norm (bool): Drop the pretrained final LayerNorm and start
            ``fc_norm`` at (1, 0). Defaults to False.
        keep_decoder (bool): Convert the decoder too (continue pretraining
            with :class:`MME`). Defaults to False.

    Returns:
        dict: mmaction-layout state dict.

    Raises:
        CheckpointMismatchError: If ``state`` is already in mmaction layout
            (converting it again would write ``backbone.backbone.*``) or has
            several MME decoders.
    """
    if _is_mmaction_layout(state):
        raise CheckpointMismatchError(
            'this checkpoint is already in mmaction layout (backbone.* / '
            'cls_head.* keys): use it as load_from directly, or run '
            'tools/convert/mme_to_recognizer.py on an MME pretraining '
            'checkpoint of this project')
    state = OrderedDict((re.sub(r'^module\.', '', k), v)
                        for k, v in state.items())
    if any(k.startswith('decoder.1.') for k in state):
        raise CheckpointMismatchError(
            'checkpoint has several decoders (decoder_num > 1); only the '
            "release's single shared decoder is supported")
    out = OrderedDict()
    norm_seen = False
    for k, value in state.items():
        if k.startswith(('decoder', 'encoder_to_decoder', 'mask_token')):
            if keep_decoder:
                out.update(_decoder_to_ours(k, value))
            continue
        k = re.sub(r'^encoder\.', '', k)
        if k.startswith('head.'):
            out[head_prefix + k[len('head.'):]] = value
            continue
        if k.startswith(('norm.', 'fc_norm.')):
            norm_seen = True
            if fresh_fc_norm:
                continue
            k = 'fc_norm.' + k.split('.', 1)[1]
        out['backbone.' + _block_keys(k)] = value
    if fresh_fc_norm or not norm_seen:
        dims = out['backbone.patch_embed.projection.weight'].shape[0] \
            if 'backbone.patch_embed.projection.weight' in out else None
        if dims is not None:
            out['backbone.fc_norm.weight'] = torch.ones(dims)
            out['backbone.fc_norm.bias'] = torch.zeros(dims)
    return out


def _decoder_to_ours(key: str, value: torch.Tensor
                     ) -> Dict[str, torch.Tensor]:
    """One official decoder key -> :class:`MMEDecoder` key(s)."""
    if key.startswith('encoder_to_decoder'):
        return {'decoder.encoder_to_decoder.weight': value}
    if key == 'mask_token':
        return {'decoder.mask_token': value}
    k = re.sub(r'^decoder\.0\.', 'decoder.', key)
    m = re.match(r'^decoder\.head\.(\d+)\.(\d+)\.(weight|bias)$', k)
    if m:  # MME: head.<i> = Sequential(Linear, GELU, Linear, Dropout, act)
        name = _MME_HEADS[int(m.group(1))]
        if name == 'hog' and m.group(2) == '2':
            perm = hog_head_permutation(value.shape[0] // 27)
            value = value[perm]
        return {f'decoder.heads.{name}.{m.group(2)}.{m.group(3)}': value}
    if k.startswith('decoder.head.'):  # VideoMAE: one Linear on pixels
        return {'decoder.heads.pixel.0.' + k.split('.')[-1]: value}
    return {_block_keys(k): value}


def mmaction_to_official(state: Dict[str, torch.Tensor],
                         encoder_prefix: str = ''
                         ) -> Dict[str, torch.Tensor]:
    """mmaction / this project's keys -> official MME / VideoMAE keys.

    Args:
        state (dict): Keys ``backbone.*`` (``cls_head.fc_cls.*`` for the
            fine-tune layout, ``decoder.*`` of :class:`MME` for the
            pretraining layout).
        encoder_prefix (str): ``'encoder.'`` writes the official
            *pretraining* layout (final LayerNorm as ``encoder.norm``, the
            decoder as MME's ``decoder.0.*`` or VideoMAE's ``decoder.*``,
            no classifier); ``''`` the fine-tune layout (``fc_norm``,
            ``head``). The fixed ``pos_embed`` tables are not written (the
            official models do not store them). Defaults to ``''``.

    Raises:
        CheckpointMismatchError: For the pretraining layout without decoder
            weights (the official pretraining model could not load it).
    """
    pretrain = bool(encoder_prefix)
    heads = {k.split('.')[2] for k in state if k.startswith('decoder.heads.')}
    if pretrain and not heads:
        raise CheckpointMismatchError(
            'the official pretraining layout needs the decoder: convert an '
            'MME pretraining checkpoint of this project (work_dirs/.../'
            'epoch_N.pth), not a recognizer or backbone checkpoint')
    mme_style = bool(heads & set(_MME_HEADS))
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('cls_head.fc_cls.'):
            if not pretrain:
                out['head.' + key[len('cls_head.fc_cls.'):]] = value
            continue
        if key.startswith('decoder.'):
            if pretrain:
                out.update(_decoder_to_official(key, value, mme_style))
            continue
        if not key.startswith('backbone.') or key.endswith('pos_embed'):
            continue
        k = _block_keys_back(key[len('backbone.'):])
        if pretrain and k.startswith('fc_norm.'):
            k = 'norm.' + k[len('fc_norm.'):]
        out[encoder_prefix + k] = value
    return out


def _decoder_to_official(key: str, value: torch.Tensor,
                         mme_style: bool) -> Dict[str, torch.Tensor]:
    """One :class:`MMEDecoder` key -> official key (inverse of
    :func:`_decoder_to_ours`)."""
    k = key[len('decoder.'):]
    if k == 'pos_embed':
        return {}
    if k.startswith('encoder_to_decoder.'):
        return {('encoder_to_decoder.0.weight' if mme_style else
                 'encoder_to_decoder.weight'): value}
    if k == 'mask_token':
        return {'mask_token': value}
    dec = 'decoder.0.' if mme_style else 'decoder.'
    m = re.match(r'^heads\.(\w+)\.(\d+)\.(weight|bias)$', k)
    if m:
        name, layer, kind = m.groups()
        if name == 'pixel':
            return {f'{dec}head.{kind}': value}
        if name == 'hog' and layer == '2':
            perm = hog_head_permutation(value.shape[0] // 27)
            value = value[torch.argsort(perm)]
        return {f'{dec}head.{_MME_HEADS.index(name)}.{layer}.{kind}': value}
    return {dec + _block_keys_back(k): value}
