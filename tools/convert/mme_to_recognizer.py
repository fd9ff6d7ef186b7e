"""Turn an MME pretraining checkpoint into a backbone init for a recognizer.

Keeps ``backbone.*`` and drops the pretraining decoder (``decoder.*``),
printing what it dropped; any other key (e.g. a recognizer's ``cls_head.*``:
such a checkpoint needs no conversion) is an error naming it. With
``--config`` it checks the result against the recognizer the config builds:
every backbone key present with the right shape (clear error otherwise);
missing non-backbone keys (the new classifier) and unexpected keys are
reported.

Example:
    python tools/convert/mme_to_recognizer.py \
        work_dirs/pretrain/epoch_800.pth \
        work_dirs/pretrain/backbone.pth --config configs/mme/finetune_ssv2.py
    python tools/train.py configs/mme/finetune_ssv2.py \
        --cfg-options load_from=work_dirs/pretrain/backbone.pth
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from mme_plugin.checkpoint import (CheckpointMismatchError,  # noqa: E402
                                   extract_prefix, load_state_dict_any,
                                   verify_state_dict)
from mme_plugin.engine.safe_load import (CheckpointLoadError,  # noqa: E402
                                         trust_checkpoints)

#: Why the decoder is left out (printed).
DECODER_DROPPED = ('pretraining decoder (a recognizer has none; '
                   'tools/convert/official_to_mmaction.py --reverse '
                   '--encoder-prefix encoder. keeps it)')


def convert(src: str, dst: str, config: str = None) -> dict:
    """Convert; returns a report dict (``kept``, ``dropped`` counts and
    ``dropped_keys``: key -> reason).

    Raises:
        SystemExit: If ``src`` has no ``backbone.*`` keys.
        CheckpointMismatchError: On keys that are neither backbone nor
            decoder, or a backbone that does not fit ``config``.
    """
    state = load_state_dict_any(src)
    backbone = extract_prefix(state, 'backbone.', 'backbone.')
    if not backbone:
        raise SystemExit(f'{src}: no backbone.* keys; is this an MME '
                         'pretraining checkpoint? (official layouts: use '
                         'tools/convert/official_to_mmaction.py)')
    dropped = {k: DECODER_DROPPED for k in state if k.startswith('decoder.')}
    other = [k for k in state if k not in backbone and k not in dropped]
    if other:
        raise CheckpointMismatchError(
            f'{src}: keys that are neither backbone.* nor the pretraining '
            f'decoder: {other[:8]}{" ..." if len(other) > 8 else ""}. A '
            'recognizer checkpoint (cls_head.*) needs no conversion: use it '
            'as load_from directly; nothing was written')
    report = dict(kept=len(backbone), dropped=len(dropped),
                  dropped_keys=dropped)
    if config:
        from mmengine.config import Config

        from mme_plugin.registry import MODELS
        from mme_plugin.utils import register_all_modules
        register_all_modules()
        model = MODELS.build(Config.fromfile(config).model)
        missing, unexpected, filled = verify_state_dict(
            backbone, model, 'backbone.', src)
        report.update(missing_outside_backbone=missing, unexpected=unexpected,
                      filled=filled)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'state_dict': backbone, 'meta': {'converted_from': src}}, dst)
    return report


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='MME pretraining checkpoint')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--config', help='recognizer config to check against')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='full unpickling (can run code from the file); '
                        'only for files you trust that the safe loader '
                        'refuses')
    args = parser.parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints()
    try:
        report = convert(args.src, args.dst, args.config)
    except (CheckpointMismatchError, CheckpointLoadError) as e:
        raise SystemExit(f'error: {e}') from None
    print(f"kept {report['kept']} backbone tensors, dropped "
          f"{report['dropped']} (decoder)")
    if report['dropped_keys']:
        print(f"dropped on purpose: {DECODER_DROPPED}: "
              f"{list(report['dropped_keys'])}")
    if 'unexpected' in report:
        print(f"new (not in checkpoint): {report['missing_outside_backbone']}")
        print(f"unexpected: {report['unexpected']}")
    print(f'wrote {args.dst}')


if __name__ == '__main__':
    main()
