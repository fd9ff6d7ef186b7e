"""Parameters and FLOPs of a config's model.

Prints parameters per top-level module (backbone, decoder, head) and the
FLOPs of one forward of the backbone on one clip: on all tokens, and for MME
models also on the visible tokens only (the cost the masked encoder pays).
FLOPs are counted with mmengine's ``FlopAnalyzer`` (1 multiply-add = 1 FLOP,
the fvcore convention), with attention switched to mmaction's explicit
softmax form (same math as SDPA, whose kernel the analyzer cannot count).

For a config whose model computes the motion targets
(``model.target_generator``, the device placement of ``pretrain_k400.py``)
the generator's flow, tracking and checks are not counted here:
``benchmarks/device_targets.py`` counts them and their share of a step.

Example:
    python tools/analysis/get_flops.py configs/mme/pretrain_k400.py
"""
import argparse
import os.path as osp
import sys
from typing import Dict, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
from torch import nn  # noqa: E402


class _Masked(nn.Module):
    def __init__(self, backbone: nn.Module, mask: torch.Tensor) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer('mask', mask)

    def forward(self, x):
        return self.backbone(x, mask=self.mask)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv``).

    Returns:
        dict: ``params`` and ``flops_all`` (and ``flops_visible`` for MME).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--mask-ratio', type=float, default=None,
                        help='default: the TubeMasking ratio of the config')
    args = parser.parse_args(argv)
    from mmengine.analysis import FlopAnalyzer
    from mmengine.config import Config

    from mme_plugin.registry import MODELS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(args.config)
    model = MODELS.build(cfg.model).eval()
    total = sum(p.numel() for p in model.parameters())
    print(f'{args.config}\nparameters: {total / 1e6:.2f} M')
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            print(f'  {name:20s} {n / 1e6:8.2f} M')
    bb = model.backbone
    from mmaction.models.backbones.vit_mae import Attention

    from mme_plugin.models.backbones import SDPAAttention
    for m in bb.modules():
        if type(m) is SDPAAttention:
            m.__class__ = Attention

    def count(module: nn.Module, inputs) -> float:
        analyzer = FlopAnalyzer(module, inputs)
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        return analyzer.total()

    frames = getattr(bb, 'num_frames', 16)
    size = bb.grid_size[0] * bb.patch_size
    x = torch.zeros(1, 3, frames, size, size)
    with torch.no_grad():
        full = count(bb, (x, ))
    print(f'backbone FLOPs, 1 x 3 x {frames} x {size} x {size}, all tokens: '
          f'{full / 1e9:.1f} G')
    result = dict(params=float(total), flops_all=float(full))
    if type(model).__name__ == 'MME':
        ratio = args.mask_ratio
        if ratio is None:
            from mme_plugin.utils import effective_pipeline
            ratio = next((t['mask_ratio'] for t in
                          effective_pipeline(cfg.train_dataloader.dataset)
                          if t['type'].endswith('TubeMasking')), 0.7)
        per_frame = bb.grid_size[0] * bb.grid_size[1]
        m = torch.zeros(per_frame, dtype=torch.bool)
        m[:int(ratio * per_frame)] = True
        mask = m.repeat(frames // bb.tubelet_size)[None]
        with torch.no_grad():
            masked = count(_Masked(bb, mask), (x, ))
        print(f'backbone FLOPs, visible tokens only (mask {ratio}): '
              f'{masked / 1e9:.1f} G ({masked / full:.2f} of all tokens)')
        result['flops_visible'] = float(masked)
    if getattr(model, 'target_generator', None) is not None:
        print('motion targets: computed by the model '
              f'({type(model.target_generator).__name__}, device placement)'
              ', not counted here; benchmarks/device_targets.py counts them')
    return result


if __name__ == '__main__':
    main()
