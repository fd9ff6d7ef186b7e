"""Convert checkpoints between the official MME/VideoMAE layouts and mmaction.

official -> mmaction: the fine-tune layout (``patch_embed.proj``,
``blocks``, ``fc_norm``, ``head``), the pretraining layouts (``encoder.*``
with the final ``encoder.norm``, MME's ``decoder.0.*`` with its HOG and
trajectory heads, VideoMAE's ``decoder.*``), each possibly wrapped by
DeepSpeed (``module``) or DDP (``module.`` prefixes, ``model``). Block keys
are renamed (``mlp.fc1`` -> ``mlp.layers.0.0`` ...), ``head`` becomes
``cls_head.fc_cls`` (dropped unless ``--keep-head``), decoder weights are
dropped unless ``--keep-decoder`` (then the release's HOG rows are reordered
to this project's layout; with ``--config`` the config's heads must mean
what the official ones mean). The rule for the final LayerNorm is printed on
every run (``FINAL_NORM_RULE``; ``--fresh-fc-norm`` for the release's
behaviour). A checkpoint already in mmaction layout is refused.

mmaction -> official (``--reverse``): the fine-tune layout, or with
``--encoder-prefix encoder.`` the pretraining layout (from an MME
pretraining checkpoint of this project, decoder included), loadable with
``strict=True`` by the official models; saved under ``model`` as the
release saves. The decoder heads' layout (HOG steps x cells x channels x
bins, trajectory length and points, pixels) comes from ``--config`` (the
pretraining config) or, without it, from the tensor shapes (refused when
they allow several layouts). Heads the official model cannot hold (HOG along
the trajectory, gray HOG, other head sets) are refused unless
``--preserve-layout``, which writes them with the official key names in this
project's row layout. The layout is saved under ``mme_layout`` in the
output, and converting that file back restores the checkpoint exactly.

Every input key is written or printed in a "dropped on purpose" list with
the reason; a key with no counterpart is an error naming it.

With ``--config`` the result is checked against the model the config builds
(missing backbone keys and any shape mismatch are errors; missing or extra
head keys are reported).

Examples:
    python tools/convert/official_to_mmaction.py mme_k400_1600ep.pth \
        work_dirs/mme_k400_backbone.pth --config configs/mme/finetune_ssv2.py
    python tools/convert/official_to_mmaction.py \
        work_dirs/pretrain_k400/epoch_800.pth official_pretrain.pth \
        --reverse --encoder-prefix encoder. \
        --config configs/mme/pretrain_k400.py --preserve-layout
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from mme_plugin.checkpoint import (FINAL_NORM_RULE,  # noqa: E402
                                   LAYOUT_KEY, CheckpointMismatchError,
                                   Conversion, convert_mmaction_to_official,
                                   convert_official_to_mmaction,
                                   layout_from_config, load_checkpoint_meta,
                                   verify_state_dict)
from mme_plugin.engine.safe_load import (CheckpointLoadError,  # noqa: E402
                                         trust_checkpoints)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--reverse', action='store_true',
                        help='mmaction -> official')
    parser.add_argument('--encoder-prefix', default='',
                        help="with --reverse: 'encoder.' for the "
                        'pretraining layout')
    parser.add_argument('--config',
                        help='the model config: checks the result against '
                        'it, and gives the decoder heads\' layout (the '
                        'pretraining config, for --reverse --encoder-prefix '
                        'encoder. and --keep-decoder)')
    parser.add_argument('--preserve-layout', action='store_true',
                        help='with --reverse: write decoder heads the '
                        "official model cannot hold in this project's row "
                        f'layout (recorded under {LAYOUT_KEY}) instead of '
                        'refusing')
    parser.add_argument('--keep-head', action='store_true',
                        help='keep the classifier (same classes only)')
    parser.add_argument('--keep-decoder', action='store_true',
                        help='convert the pretraining decoder too (to '
                        'continue pretraining with an MME config)')
    parser.add_argument('--fresh-fc-norm', action='store_true',
                        help='start fc_norm at (1, 0) as the release does, '
                        'instead of the pretrained final LayerNorm')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='full unpickling (can run code from the file); '
                        'only for files you trust that the safe loader '
                        'refuses')
    return parser.parse_args(argv)


def _report(conv: Conversion) -> None:
    if conv.layout is not None:
        print(f'decoder heads: {conv.layout.describe()}')
    if conv.dropped:
        print(f'dropped on purpose ({len(conv.dropped)} tensors):')
        for line in conv.dropped_report():
            print(f'  {line}')
    else:
        print('dropped on purpose: nothing')


def convert(args: argparse.Namespace) -> Conversion:
    """Run the conversion of ``args`` and write ``args.dst``."""
    state, meta = load_checkpoint_meta(args.src)
    config_layout, model = None, None
    if args.config:
        config_layout, model = layout_from_config(args.config)
    if args.reverse:
        if model is not None and config_layout is not None:
            verify_state_dict(dict(state), model, '', args.src)
        conv = convert_mmaction_to_official(
            state, args.encoder_prefix, layout=config_layout,
            preserve_layout=args.preserve_layout)
        _report(conv)
        os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
        torch.save({'model': conv.state, LAYOUT_KEY: conv.meta}, args.dst)
        kind = 'pretraining' if args.encoder_prefix else 'fine-tune'
        how = '' if not conv.meta.get('problems') else \
            " (--preserve-layout: this project's head layout, see " \
            f'{LAYOUT_KEY})'
        print(f'wrote {len(conv.state)} tensors in the official {kind} '
              f'layout{how} to {args.dst}')
        return conv
    conv = convert_official_to_mmaction(
        state, fresh_fc_norm=args.fresh_fc_norm,
        keep_decoder=args.keep_decoder, keep_head=args.keep_head, meta=meta,
        config_layout=config_layout)
    print(f'final LayerNorm: {FINAL_NORM_RULE}')
    _report(conv)
    out = conv.state
    if model is not None:
        missing, unexpected, filled = verify_state_dict(
            out, model, 'backbone.', args.src)
        print(f'new (not in checkpoint): {missing}\nunexpected: '
              f'{unexpected}\nfilled from the model (fixed tables): '
              f'{filled}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'state_dict': out, 'meta': {'converted_from': args.src}},
               args.dst)
    print(f'wrote {len(out)} tensors to {args.dst}')
    return conv


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints()
    try:
        convert(args)
    except CheckpointMismatchError as e:
        raise SystemExit(f'error: {args.src}: {e}') from None
    except CheckpointLoadError as e:
        raise SystemExit(f'error: {e}') from None


if __name__ == '__main__':
    main()
