"""Convert checkpoints between the official MME/VideoMAE layouts and mmaction.

official -> mmaction: the fine-tune layout (``patch_embed.proj``,
``blocks``, ``fc_norm``, ``head``), the pretraining layouts (``encoder.*``
with the final ``encoder.norm``, MME's ``decoder.0.*`` with its HOG and
trajectory heads, VideoMAE's ``decoder.*``), each possibly wrapped by
DeepSpeed (``module``) or DDP (``module.`` prefixes, ``model``). Block keys
are renamed (``mlp.fc1`` -> ``mlp.layers.0.0`` ...), ``head`` becomes
``cls_head.fc_cls`` (dropped unless ``--keep-head``), decoder weights are
dropped unless ``--keep-decoder``. The rule for the final LayerNorm is
printed on every run (``FINAL_NORM_RULE``; ``--fresh-fc-norm`` for the
release's behaviour). A checkpoint already in mmaction layout is refused.

mmaction -> official (``--reverse``): the fine-tune layout, or with
``--encoder-prefix encoder.`` the pretraining layout (from an MME
pretraining checkpoint of this project, decoder included), loadable with
``strict=True`` by the official models; saved under ``model`` as the
release saves.

With ``--config`` the result is checked against the model the config builds
(missing backbone keys and any shape mismatch are errors; missing or extra
head keys are reported).

Examples:
    python tools/convert/official_to_mmaction.py mme_k400_1600ep.pth \
        work_dirs/mme_k400_backbone.pth --config configs/mme/finetune_ssv2.py
    python tools/convert/official_to_mmaction.py \
        work_dirs/pretrain_k400/epoch_800.pth official_pretrain.pth \
        --reverse --encoder-prefix encoder.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from mme_plugin.checkpoint import (FINAL_NORM_RULE,  # noqa: E402
                                   CheckpointMismatchError,
                                   load_state_dict_any, mmaction_to_official,
                                   official_to_mmaction, verify_state_dict)
from mme_plugin.engine.safe_load import (UnsafeCheckpointError,  # noqa: E402
                                         trust_checkpoints)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--reverse', action='store_true',
                        help='mmaction -> official')
    parser.add_argument('--encoder-prefix', default='',
                        help="with --reverse: 'encoder.' for the "
                        'pretraining layout')
    parser.add_argument('--config', help='check against this config')
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
    args = parser.parse_args()
    if args.trust_checkpoint:
        trust_checkpoints()
    try:
        state = load_state_dict_any(args.src)
        if args.reverse:
            out = mmaction_to_official(state, args.encoder_prefix)
            torch.save({'model': out}, args.dst)
            print(f'wrote {len(out)} tensors in the official '
                  f"{'pretraining' if args.encoder_prefix else 'fine-tune'}"
                  f' layout to {args.dst}')
            return
        out = official_to_mmaction(state, fresh_fc_norm=args.fresh_fc_norm,
                                   keep_decoder=args.keep_decoder)
        print(f'final LayerNorm: {FINAL_NORM_RULE}')
        if not args.keep_head:
            out = {k: v for k, v in out.items()
                   if not k.startswith('cls_head.')}
        if args.config:
            from mmengine.config import Config

            from mme_plugin.registry import MODELS
            from mme_plugin.utils import register_all_modules
            register_all_modules()
            model = MODELS.build(Config.fromfile(args.config).model)
            missing, unexpected, filled = verify_state_dict(
                out, model, 'backbone.', args.src)
            print(f'new (not in checkpoint): {missing}\nunexpected: '
                  f'{unexpected}\nfilled from the model (fixed tables): '
                  f'{filled}')
    except CheckpointMismatchError as e:
        raise SystemExit(f'error: {args.src}: {e}') from None
    except UnsafeCheckpointError as e:
        raise SystemExit(f'error: {e}') from None
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'state_dict': out, 'meta': {'converted_from': args.src}},
               args.dst)
    print(f'wrote {len(out)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
