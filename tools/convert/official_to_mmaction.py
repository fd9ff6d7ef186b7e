"""Convert checkpoints between the official MME / VideoMAE layout and mmaction.

official -> mmaction: ``encoder.`` and DeepSpeed ``module.`` prefixes
dropped, ``patch_embed.proj`` -> ``patch_embed.projection``, ``mlp.fc1`` ->
``mlp.layers.0.0``, ``mlp.fc2`` -> ``mlp.layers.1``, ``head`` ->
``cls_head.fc_cls``, the rest under ``backbone.``; decoder weights of
pretraining checkpoints are dropped. mmaction -> official does the reverse
(``--encoder-prefix encoder.`` for the pretraining layout).

With ``--config`` the result is checked against the model the config builds
(missing backbone keys and any shape mismatch are errors; missing or extra
head keys are reported).

Examples:
    python tools/convert/official_to_mmaction.py mme_k400_1600ep.pth \
        work_dirs/mme_k400_backbone.pth --config configs/mme/finetune_ssv2.py
    python tools/convert/official_to_mmaction.py work_dirs/x/epoch_30.pth \
        official.pth --reverse
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from mme_plugin.checkpoint import (load_state_dict_any,  # noqa: E402
                                   mmaction_to_official, official_to_mmaction,
                                   verify_state_dict)


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
    args = parser.parse_args()
    state = load_state_dict_any(args.src)
    if args.reverse:
        out = mmaction_to_official(state, args.encoder_prefix)
        torch.save({'module': out}, args.dst)
        print(f'wrote {len(out)} tensors in the official layout to '
              f'{args.dst}')
        return
    out = official_to_mmaction(state)
    if not args.keep_head:
        out = {k: v for k, v in out.items() if not k.startswith('cls_head.')}
    if args.config:
        from mmengine.config import Config

        from mme_plugin.registry import MODELS
        from mme_plugin.utils import register_all_modules
        register_all_modules()
        model = MODELS.build(Config.fromfile(args.config).model)
        missing, unexpected, filled = verify_state_dict(
            out, model, 'backbone.', args.src)
        print(f'new (not in checkpoint): {missing}\nunexpected: '
              f'{unexpected}\nfilled from the model (fixed tables): {filled}')
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    torch.save({'state_dict': out, 'meta': {'converted_from': args.src}},
               args.dst)
    print(f'wrote {len(out)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
