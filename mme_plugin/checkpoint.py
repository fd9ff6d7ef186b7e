"""Checkpoint conversion and verification helpers.

Layouts handled:

* ``mme``: our pretraining checkpoints (``state_dict`` of :class:`MME`:
  ``backbone.*``, ``decoder.*``);
* ``recognizer``: mmaction recognizers (``backbone.*``, ``cls_head.*``);
* ``official``: the MME / VideoMAE release (``encoder.`` prefix,
  ``patch_embed.proj``, ``mlp.fc1/fc2``, ``head``; optionally wrapped in
  ``module`` / ``model`` by DeepSpeed).

The decoder heads' row layouts (HOG steps x cells x channels x bins,
trajectory length and points, pixels) come from the pretraining config or
the tensor shapes (:mod:`mme_plugin.checkpoint_layout`), never from
constants; the official format's fixed HOG layout is checked, not assumed.
Conversions return a :class:`Conversion` listing every input key left out
and why; a key with no counterpart, or two inputs for one output key, is an
error.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from .checkpoint_layout import (LAYOUT_KEY, OFFICIAL_MME_HEADS,
                                PIXEL_CHANNELS, CheckpointLayout,
                                HeadLayout, PixelLayout, check_layout_fits,
                                head_linear_indices, hog_head_permutation,
                                infer_layout,
                                layout_from_config, layout_from_model,
                                official_head_layout, official_problems)
from .utils.state_diff import CheckpointMismatchError, diff_state_dicts

__all__ = [
    'CheckpointMismatchError', 'load_state_dict_any', 'load_checkpoint_meta',
    'extract_prefix', 'verify_state_dict', 'official_to_mmaction',
    'mmaction_to_official', 'convert_official_to_mmaction',
    'convert_mmaction_to_official', 'Conversion', 'hog_head_permutation',
    'layout_from_config', 'layout_from_model', 'infer_layout',
    'CheckpointLayout', 'LAYOUT_KEY', 'FINAL_NORM_RULE'
]


def load_checkpoint_meta(path: str
                         ) -> Tuple[Dict[str, torch.Tensor], Optional[Dict]]:
    """Load a checkpoint file: its flat state dict (``state_dict`` /
    ``module`` / ``model`` containers of mmengine, DeepSpeed and timm-style
    files unwrapped) and its :data:`LAYOUT_KEY` metadata, if any (written by
    ``tools/convert/official_to_mmaction.py --reverse``).

    Args:
        path (str): Checkpoint path (loaded without running code from it:
            :func:`~mme_plugin.engine.safe_load.safe_torch_load`).

    Returns:
        tuple: The state dict and the layout metadata (None if absent).

    Raises:
        CheckpointMismatchError: If the file holds no state dict of tensors.
    """
    from mme_plugin.engine.safe_load import safe_torch_load
    obj = safe_torch_load(path, map_location='cpu')
    meta = obj.get(LAYOUT_KEY) if isinstance(obj, dict) else None
    for key in ('state_dict', 'module', 'model'):
        if isinstance(obj, dict) and key in obj and isinstance(
                obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatchError(
            f'{path}: no state dict of tensors found (keys: '
            f'{list(obj)[:8] if isinstance(obj, dict) else type(obj)})')
    return OrderedDict(obj), meta


def load_state_dict_any(path: str) -> Dict[str, torch.Tensor]:
    """The flat state dict of a checkpoint file
    (:func:`load_checkpoint_meta` without the metadata).

    Args:
        path (str): Checkpoint path.

    Returns:
        dict[str, Tensor]: The flat state dict.
    """
    return load_checkpoint_meta(path)[0]


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
    diff = diff_state_dicts(target, state)
    missing, unexpected = diff.missing, diff.unexpected
    bad_missing = diff.missing_under(prefix)
    mismatched = diff.mismatch_lines()
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
# Kept for old imports: the official MME heads in ``decoder.0.head`` order.
_MME_HEADS = OFFICIAL_MME_HEADS

#: What the pretrained final LayerNorm becomes (printed by the converter).
FINAL_NORM_RULE = (
    "the pretrained encoder's final LayerNorm (official 'encoder.norm', this "
    "project's 'backbone.fc_norm') becomes the recognizer's 'fc_norm' (the "
    'LayerNorm on the mean-pooled feature), as this project pretrains it; '
    "--fresh-fc-norm starts fc_norm at weight 1, bias 0 as the release's "
    'fine-tuning does')

_DECODER_KEYS = ('decoder', 'encoder_to_decoder', 'mask_token')
_WHY_FIXED = ('fixed sinusoid position table (the official models compute '
              'it and do not store it; restored from the layout metadata or '
              'the model)')


@dataclass
class Conversion:
    """What a conversion wrote and what it left out on purpose.

    Args:
        state (dict): The converted state dict.
        dropped (dict[str, str]): Input key -> why it was not written.
        layout (CheckpointLayout, optional): The decoder heads' layout used.
        meta (dict, optional): Plain values to save under
            :data:`LAYOUT_KEY` (mmaction -> official), so that converting
            back restores the input exactly.
        sources (dict[str, str]): Output key -> the input key written there.
        added (dict[str, str]): Output keys not from the input -> why
            (``fc_norm`` at (1, 0), fixed tables restored from metadata).
    """
    state: Dict[str, torch.Tensor]
    dropped: Dict[str, str] = field(default_factory=dict)
    layout: Optional[CheckpointLayout] = None
    meta: Optional[Dict] = None
    sources: Dict[str, str] = field(default_factory=dict)
    added: Dict[str, str] = field(default_factory=dict)

    def dropped_report(self) -> List[str]:
        """One line per reason: ``reason: [keys]``."""
        by_reason: Dict[str, List[str]] = OrderedDict()
        for key, why in self.dropped.items():
            by_reason.setdefault(why, []).append(key)
        return [f'{why}: {keys}' for why, keys in by_reason.items()]


class _Writer:
    """Collects output keys, refusing two inputs written to one key."""

    def __init__(self) -> None:
        self.out: Dict[str, torch.Tensor] = OrderedDict()
        self.origin: Dict[str, str] = {}

    def put(self, key: str, value: torch.Tensor, source: str) -> None:
        if key in self.out:
            raise CheckpointMismatchError(
                f'{self.origin[key]!r} and {source!r} would both be written '
                f'as {key!r}: the checkpoint mixes two layouts; remove one')
        self.out[key] = value
        self.origin[key] = source


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


def _is_mmaction_layout(state: Dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(('backbone.', 'cls_head.', 'decoder.heads.'))
               for k in state)


def _is_sinusoid_table(value: torch.Tensor) -> bool:
    """Whether ``value`` is exactly the fixed ``[1, N, D]`` sinusoid table."""
    if value.dim() != 3 or value.shape[0] != 1:
        return False
    from mmaction.models.backbones.vit_mae import get_sinusoid_encoding
    table = get_sinusoid_encoding(int(value.shape[1]), int(value.shape[2]))
    return value.dtype == table.dtype and torch.equal(value.cpu(), table)


def _sinusoid_table(shape: List[int]) -> torch.Tensor:
    from mmaction.models.backbones.vit_mae import get_sinusoid_encoding
    if len(shape) != 3 or shape[0] != 1:
        raise CheckpointMismatchError(
            f'{LAYOUT_KEY}: fixed table of shape {shape}, expected [1, N, D]')
    return get_sinusoid_encoding(int(shape[1]), int(shape[2]))


def _official_head_plan(state: Dict[str, torch.Tensor], meta: Optional[Dict],
                        config_layout: Optional[CheckpointLayout],
                        mme_style: bool) -> Tuple[Dict, CheckpointLayout]:
    """Official head -> (our name, HOG permutation or None), and the layout.

    The keys of the plan are the head indices (MME) or ``None`` (VideoMAE's
    single ``decoder.head``). With ``meta`` (a file this project wrote) its
    names, order and row layout are used; otherwise the release's.
    """
    w = state.get('encoder.patch_embed.proj.weight',
                  state.get('patch_embed.proj.weight'))
    patch = int(w.shape[-1]) if w is not None and w.dim() == 5 else 0
    tubelet = int(w.shape[2]) if w is not None and w.dim() == 5 else 0

    def out_rows(prefix: str) -> Tuple[int, int]:
        """Output rows and output-layer index of a head."""
        idx = head_linear_indices(state, prefix)
        if idx:
            return int(state[f'{prefix}{idx[-1]}.weight'].shape[0]), idx[-1]
        return int(state[prefix + 'weight'].shape[0]), 0  # VideoMAE Linear

    if mme_style:
        indices = sorted({int(m.group(1)) for m in (
            re.match(r'^decoder\.0\.head\.(\d+)\.', k) for k in state) if m})
        prefixes = {i: f'decoder.0.head.{i}.' for i in indices}
    else:
        prefixes = {None: 'decoder.head.'} if any(
            k.startswith('decoder.head.') for k in state) else {}
    if meta is not None:
        layout = CheckpointLayout.from_meta(meta, LAYOUT_KEY)
        by_name = {h.name: h for h in layout.heads}
        index = meta.get('head_index', {})
        plan = {}
        for i in prefixes:
            names = [n for n, j in index.items() if j == i] if mme_style \
                else [layout.heads[0].name] if layout.heads else []
            if len(names) != 1 or names[0] not in by_name:
                raise CheckpointMismatchError(
                    f'{LAYOUT_KEY}: no head for official head {i} '
                    f'(head_index {index})')
            head = by_name[names[0]]
            rows, out_idx = out_rows(prefixes[i])
            if rows != head.rows:
                raise CheckpointMismatchError(
                    f'{LAYOUT_KEY} says head {head.name} has {head.rows} rows,'
                    f' the file {rows}: the metadata belongs to another file')
            perm = None
            if head.kind == 'hog' and meta.get('hog_row_order') == 'release':
                perm = head.detail.permutation()
            plan[i] = (head.name, perm, out_idx)
        if config_layout is not None and [
                (h.name, h.rows, h.detail) for h in config_layout.heads
        ] != [(h.name, h.rows, h.detail) for h in layout.heads]:
            raise CheckpointMismatchError(
                f'the heads recorded in {LAYOUT_KEY} ({layout.describe()}) '
                f'are not those of {config_layout.source} '
                f'({config_layout.describe()}): pass the config the '
                'checkpoint was pretrained with')
        return plan, layout
    plan, heads = {}, []
    for i, prefix in prefixes.items():
        if mme_style:
            if i >= len(OFFICIAL_MME_HEADS):
                raise CheckpointMismatchError(
                    f'official decoder head {i} ({prefix}*): the release has '
                    f'{len(OFFICIAL_MME_HEADS)} heads {OFFICIAL_MME_HEADS}')
            kind = OFFICIAL_MME_HEADS[i]
        else:
            kind = 'pixel'
        rows, out_idx = out_rows(prefix)
        head = official_head_layout(kind, rows, patch, prefix + '*')
        if kind == 'pixel' and patch and \
                rows == tubelet * patch**2 * PIXEL_CHANNELS:
            head = HeadLayout('pixel', 'pixel', int(rows),
                              PixelLayout(tubelet, patch, PIXEL_CHANNELS))
        heads.append(head)
        plan[i] = (head.name,
                   head.detail.permutation() if kind == 'hog' else None,
                   out_idx)
    hidden = 0
    if mme_style and prefixes:
        first = prefixes[min(prefixes)]
        idx = head_linear_indices(state, first)
        hidden = int(state[f'{first}{idx[0]}.weight'].shape[0]) \
            if len(idx) > 1 else 0
    layout = CheckpointLayout(heads, hidden, patch, tubelet,
                              'the official format (release spec 2.6-2.7)')
    if config_layout is not None:
        _check_config_fits_official(config_layout, layout)
    return plan, layout


def _check_config_fits_official(config: CheckpointLayout,
                                official: CheckpointLayout) -> None:
    """The config's heads must mean what the official heads mean."""
    bad = []
    for head in official.heads:
        ours = config.head(head.kind)
        if ours is None:
            bad.append(f'the config has no {head.kind} head for the '
                       f'official {head.describe()}')
        elif ours.detail != head.detail or ours.rows != head.rows:
            bad.append(f'config {ours.describe()} vs official '
                       f'{head.describe()}')
    extra = {h.kind for h in config.heads} - {h.kind for h in official.heads}
    if extra:
        bad.append(f'the config has heads {sorted(extra)} the official '
                   'checkpoint lacks')
    if bad:
        raise CheckpointMismatchError(
            f'the official decoder does not fit {config.source}: '
            f'{"; ".join(bad)}. Continue pretraining with a config whose '
            'targets match the release (e.g. HOGTarget(mode=\'static\', '
            "channels='rgb'), TrajectoryTarget with 2x2 points), or convert "
            'without --keep-decoder')


def convert_official_to_mmaction(
        state: Dict[str, torch.Tensor],
        head_prefix: str = 'cls_head.fc_cls.',
        fresh_fc_norm: bool = False,
        keep_decoder: bool = False,
        keep_head: bool = True,
        meta: Optional[Dict] = None,
        config_layout: Optional[CheckpointLayout] = None) -> Conversion:
    """Official MME / VideoMAE keys -> mmaction keys, with a report.

    Handles the fine-tune layout (``patch_embed.proj``, ``blocks``,
    ``fc_norm``, ``head``), the pretraining layouts (``encoder.*`` with its
    final ``encoder.norm``; MME's ``decoder.0.*`` / ``encoder_to_decoder.0``
    with its heads, VideoMAE's ``decoder.*`` with one), and the DeepSpeed /
    DDP ``module.`` prefix. The final LayerNorm follows
    :data:`FINAL_NORM_RULE`. Every input key is written or listed in
    :attr:`Conversion.dropped` with the reason.

    Args:
        state (dict): Official state dict.
        head_prefix (str): Where the fine-tune ``head`` goes.
        fresh_fc_norm (bool): Drop the pretrained final LayerNorm and start
            ``fc_norm`` at (1, 0). Defaults to False.
        keep_decoder (bool): Convert the decoder too (continue pretraining
            with :class:`MME`): the MME heads become ``hog`` and ``traj``
            with the HOG rows reordered from the release's layout
            (:func:`hog_head_permutation`), VideoMAE's becomes ``pixel``.
            Defaults to False.
        keep_head (bool): Write the classifier ``head``. Defaults to True.
        meta (dict, optional): The file's :data:`LAYOUT_KEY` (written by
            :func:`convert_mmaction_to_official`): head names, order, row
            layout, fixed tables and final norm are restored from it.
        config_layout (CheckpointLayout, optional): The pretraining config's
            layout; with ``keep_decoder`` its heads must mean what the
            official ones mean.

    Returns:
        Conversion: The mmaction-layout state dict and the dropped keys.

    Raises:
        CheckpointMismatchError: If ``state`` is already in mmaction layout,
            has several MME decoders, an official head of a layout the
            release does not write, or heads the config reads differently.
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
    mme_style = any(k.startswith(('decoder.0.', 'encoder_to_decoder.0.'))
                    for k in state)
    plan, layout = {}, None
    if keep_decoder and any(k.startswith(_DECODER_KEYS) for k in state):
        plan, layout = _official_head_plan(state, meta, config_layout,
                                           mme_style)
    final_norm = meta.get('final_norm', 'fc_norm') if meta else 'fc_norm'
    writer, dropped = _Writer(), OrderedDict()
    norm_seen = False
    for key, value in state.items():
        if key.startswith(_DECODER_KEYS):
            if not keep_decoder:
                dropped[key] = ('pretraining decoder (pass --keep-decoder to '
                                'convert it)')
                continue
            for new, val in _decoder_to_ours(key, value, plan,
                                             mme_style).items():
                writer.put(new, val, key)
            continue
        k = re.sub(r'^encoder\.', '', key)
        if k.startswith('head.'):
            if keep_head:
                writer.put(head_prefix + k[len('head.'):], value, key)
            else:
                dropped[key] = ('classifier (pass --keep-head to keep it: '
                                'same classes only)')
            continue
        if k.startswith(('norm.', 'fc_norm.')):
            norm_seen = True
            if fresh_fc_norm:
                dropped[key] = ('pretrained final LayerNorm (--fresh-fc-norm'
                                ' starts fc_norm at (1, 0))')
                continue
            k = f"{final_norm or 'fc_norm'}." + k.split('.', 1)[1]
        writer.put('backbone.' + _block_keys(k), value, key)
    out, added = writer.out, OrderedDict()
    add_fc_norm = fresh_fc_norm or (not norm_seen and meta is None)
    proj = out.get('backbone.patch_embed.projection.weight')
    if add_fc_norm and proj is not None:
        out['backbone.fc_norm.weight'] = torch.ones(proj.shape[0])
        out['backbone.fc_norm.bias'] = torch.zeros(proj.shape[0])
        added.update(dict.fromkeys(
            ('backbone.fc_norm.weight', 'backbone.fc_norm.bias'),
            'fc_norm started at (1, 0)'))
    for key, shape in (meta or {}).get('fixed_tables', {}).items():
        writer.put(key, _sinusoid_table(shape), f'{LAYOUT_KEY} fixed table')
        added[key] = f'fixed sinusoid table {shape} restored ({LAYOUT_KEY})'
    return Conversion(out, dropped, layout, None, {
        k: v for k, v in writer.origin.items() if k not in added}, added)


def official_to_mmaction(state: Dict[str, torch.Tensor],
                         head_prefix: str = 'cls_head.fc_cls.',
                         fresh_fc_norm: bool = False,
                         keep_decoder: bool = False,
                         **kwargs) -> Dict[str, torch.Tensor]:
    """Official MME / VideoMAE keys -> mmaction keys
    (:func:`convert_official_to_mmaction` without the report).

    Returns:
        dict: mmaction-layout state dict.
    """
    return convert_official_to_mmaction(state, head_prefix, fresh_fc_norm,
                                        keep_decoder, **kwargs).state


def _decoder_to_ours(key: str, value: torch.Tensor, plan: Dict,
                     mme_style: bool) -> Dict[str, torch.Tensor]:
    """One official decoder key -> :class:`MMEDecoder` key(s)."""
    if key.startswith('encoder_to_decoder'):
        return {'decoder.encoder_to_decoder.' + key.split('.')[-1]: value}
    if key == 'mask_token':
        return {'decoder.mask_token': value}
    k = re.sub(r'^decoder\.0\.', 'decoder.', key)
    m = re.match(r'^decoder\.head\.(\d+)\.(\d+)\.(weight|bias)$', k)
    if m and mme_style:  # head.<i> = Sequential(Linear, GELU, Linear, ...)
        name, perm, out_idx = plan[int(m.group(1))]
        if perm is not None and int(m.group(2)) == out_idx:
            value = value[perm]
        return {f'decoder.heads.{name}.{m.group(2)}.{m.group(3)}': value}
    m = re.match(r'^decoder\.head\.(weight|bias)$', k)
    if m and not mme_style:  # VideoMAE: one Linear on pixels
        name, _, _ = plan[None]
        return {f'decoder.heads.{name}.0.{m.group(1)}': value}
    if k.startswith('decoder.head.'):
        raise CheckpointMismatchError(
            f'{key}: not a head key of the official MME (decoder.0.head.<i>.'
            '<layer>) or VideoMAE (decoder.head) layout')
    return {_block_keys(k): value}


def _refusal(layout: CheckpointLayout, problems: List[str]) -> str:
    return (
        'cannot write this checkpoint in the official pretraining layout: '
        + '; '.join(problems) + f'. Layout: {layout.describe()}. The '
        'official model could not load it with strict=True. Pass '
        '--preserve-layout (preserve_layout=True) to write it anyway with '
        "the official key names and this project's row layout, recorded "
        f"under '{LAYOUT_KEY}' in the output so that converting back "
        'restores it exactly; nothing was written')


def convert_mmaction_to_official(state: Dict[str, torch.Tensor],
                                 encoder_prefix: str = '',
                                 layout: Optional[CheckpointLayout] = None,
                                 preserve_layout: bool = False
                                 ) -> Conversion:
    """mmaction / this project's keys -> official MME / VideoMAE keys.

    The decoder heads' layout comes from ``layout`` (the pretraining
    config's, :func:`layout_from_config`) or, without one, from the tensor
    shapes (:func:`infer_layout`, which refuses when they allow several).
    A head the official model cannot hold (:func:`official_problems`: HOG
    along the trajectory, gray HOG, pixel + trajectory heads, ...) is
    refused, unless ``preserve_layout``: then it keeps this project's row
    order under the official key names. Either way :attr:`Conversion.meta`
    records the layout, the head order and what was left out, so that
    :func:`convert_official_to_mmaction` restores the input exactly.

    Args:
        state (dict): Keys ``backbone.*`` (``cls_head.fc_cls.*`` for the
            fine-tune layout, ``decoder.*`` of :class:`MME` for the
            pretraining layout).
        encoder_prefix (str): ``'encoder.'`` writes the official
            *pretraining* layout (final LayerNorm as ``encoder.norm``, the
            decoder as MME's ``decoder.0.*`` or VideoMAE's ``decoder.*``,
            no classifier); ``''`` the fine-tune layout (``fc_norm``,
            ``head``, no decoder). The fixed ``pos_embed`` tables are not
            written (the official models do not store them). Defaults to
            ``''``.
        layout (CheckpointLayout, optional): The heads' layout.
        preserve_layout (bool): Write heads the official format cannot hold,
            in this project's layout. Defaults to False.

    Returns:
        Conversion: The official state dict, the dropped keys and the
        metadata to save under :data:`LAYOUT_KEY`.

    Raises:
        CheckpointMismatchError: For the pretraining layout without decoder
            weights, keys that have no official counterpart, a layout that
            does not fit the tensors or is ambiguous, or heads the official
            format cannot hold (without ``preserve_layout``).
    """
    pretrain = bool(encoder_prefix)
    heads = [k.split('.')[2] for k in state if k.startswith('decoder.heads.')]
    if pretrain and not heads:
        raise CheckpointMismatchError(
            'the official pretraining layout needs the decoder: convert an '
            'MME pretraining checkpoint of this project (work_dirs/.../'
            'epoch_N.pth), not a recognizer or backbone checkpoint')
    unknown = [k for k in state
               if not k.startswith(('backbone.', 'decoder.',
                                    'cls_head.fc_cls.'))]
    if unknown:
        raise CheckpointMismatchError(
            f'keys with no official counterpart: {unknown[:8]}'
            f'{" ..." if len(unknown) > 8 else ""} (the official layouts '
            'hold the encoder, the MME/VideoMAE decoder and a Linear '
            "classifier 'head'); nothing was written")
    meta: Dict = dict(encoder_prefix=encoder_prefix, fixed_tables={})
    final = [n for n in ('fc_norm', 'norm')
             if f'backbone.{n}.weight' in state]
    meta['final_norm'] = final[0] if final else None
    plan: Dict[str, Tuple[int, Optional[torch.Tensor], int]] = {}
    style = None
    if pretrain:
        if layout is None:
            layout = infer_layout(state)
        check_layout_fits(layout, state)
        problems = official_problems(layout)
        if problems and not preserve_layout:
            raise CheckpointMismatchError(_refusal(layout, problems))
        kinds = [h.kind for h in layout.heads]
        style = 'videomae' if kinds == ['pixel'] and not problems else 'mme'
        official_order = (style == 'mme' and len(set(kinds)) == len(kinds)
                          and set(kinds) <= set(OFFICIAL_MME_HEADS))
        hog_order = 'project'
        for i, head in enumerate(layout.heads):
            index = OFFICIAL_MME_HEADS.index(head.kind) if official_order \
                else i
            perm = None
            if head.kind == 'hog' and head.detail is not None and \
                    head.detail.official_problem() is None:
                perm, hog_order = head.detail.permutation(), 'release'
            idx = head_linear_indices(state, f'decoder.heads.{head.name}.')
            plan[head.name] = (index, perm, idx[-1])
        meta.update(layout.to_meta(), official=not problems,
                    problems=problems, decoder_style=style,
                    head_index={n: p[0] for n, p in plan.items()},
                    hog_row_order=hog_order)
    writer, dropped = _Writer(), OrderedDict()
    for key, value in state.items():
        if key.startswith('cls_head.'):
            if pretrain:
                dropped[key] = ('classifier (the official pretraining layout '
                                'has none)')
            else:
                writer.put('head.' + key[len('cls_head.fc_cls.'):], value,
                           key)
            continue
        if key.endswith('pos_embed') and _is_sinusoid_table(value):
            dropped[key] = _WHY_FIXED
            meta['fixed_tables'][key] = list(value.shape)
            continue
        if key.startswith('decoder.'):
            if not pretrain:
                dropped[key] = ('pretraining decoder (the official fine-tune '
                                'layout has none; --encoder-prefix encoder. '
                                'writes the pretraining layout)')
                continue
            writer.put(_decoder_to_official(key, style, plan), _reorder(
                key, value, plan), key)
            continue
        k = _block_keys_back(key[len('backbone.'):])
        if pretrain and k.startswith('fc_norm.'):
            k = 'norm.' + k[len('fc_norm.'):]
        writer.put(encoder_prefix + k, value, key)
    return Conversion(writer.out, dropped, layout, meta, writer.origin)


def mmaction_to_official(state: Dict[str, torch.Tensor],
                         encoder_prefix: str = '',
                         **kwargs) -> Dict[str, torch.Tensor]:
    """mmaction / this project's keys -> official MME / VideoMAE keys
    (:func:`convert_mmaction_to_official` without the report).

    Returns:
        dict: Official-layout state dict.
    """
    return convert_mmaction_to_official(state, encoder_prefix,
                                        **kwargs).state


def _reorder(key: str, value: torch.Tensor, plan: Dict) -> torch.Tensor:
    """The release's HOG row order for the HOG output layer."""
    m = re.match(r'^decoder\.heads\.([^.]+)\.(\d+)\.(weight|bias)$', key)
    if m and m.group(1) in plan:
        _, perm, out_idx = plan[m.group(1)]
        if perm is not None and int(m.group(2)) == out_idx:
            return value[torch.argsort(perm)]
    return value


def _decoder_to_official(key: str, style: str, plan: Dict) -> str:
    """One :class:`MMEDecoder` key -> official key (inverse of
    :func:`_decoder_to_ours`)."""
    k = key[len('decoder.'):]
    mme = style == 'mme'
    if k.startswith('encoder_to_decoder.'):
        rest = k[len('encoder_to_decoder.'):]
        return f"encoder_to_decoder.{'0.' if mme else ''}{rest}"
    if k == 'mask_token':
        return 'mask_token'
    dec = 'decoder.0.' if mme else 'decoder.'
    m = re.match(r'^heads\.([^.]+)\.(\d+)\.(weight|bias)$', k)
    if m:
        name, layer, kind = m.groups()
        if not mme:
            return f'{dec}head.{kind}'
        return f'{dec}head.{plan[name][0]}.{layer}.{kind}'
    return dec + _block_keys_back(k)
