"""Watch a pretraining run for encoder collapse.

Pretraining can make the encoder input-independent: its output becomes
almost the same vector for every clip and token while the loss still falls
(docs/synthetic_benchmark.md), and nothing in the loss log shows it.
:class:`CollapseMonitorHook` measures it during the run, on a small fixed
probe batch, with :func:`~mme_plugin.evaluation.collapse.collapse_measures`:

* ``collapse_share``: the constant (input-independent) share of the
  encoder's last-block token features, ``||mean f|| / RMS ||f||`` over the
  probe clips and their tokens: 0 = no constant part, 1 = the same feature
  for every clip and token;
* ``collapse_pr``: the participation ratio of the clips' pooled features
  (the encoder's output), the number of directions they vary along;
* ``collapse_sv_ratio_block{i}``: per block, the largest top / median
  singular value ratio of its weight matrices (about 2 at initialisation;
  one dominant direction makes it large);
* ``collapsed``: 1 when ``collapse_share > share_max`` (0.9) or
  ``collapse_pr < pr_min`` (1.5), else 0; the first measurement that flags
  collapse (and the first after a recovery) also logs a warning.

They go to the runner's message hub under ``train/``, so the logger prints
them (the last measured values) in every training log line and writes them
to ``scalars.json``; each measurement also logs one INFO line.

Cost: one forward of the encoder on ``num_clips`` clips (eval mode, no
gradient, train mode restored after) and one ``svdvals`` per weight matrix,
every ``interval`` iterations (or epochs), on the main process only. The
probe clips are the first training batches (preprocessed as for validation,
no blending), collected once and kept on the device; after a resume they
are collected again from the first batches then.
"""
from typing import Dict, List, Optional

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from torch import Tensor, nn

from mme_plugin.evaluation.collapse import PR_MIN, SHARE_MAX, \
    collapse_measures
from mme_plugin.registry import HOOKS

__all__ = ['CollapseMonitorHook']

# The participation ratio of N clips is at most N - 1: with fewer than 4 it
# could not exceed the collapse threshold of 1.5 by much (2 clips: always 1).
MIN_CLIPS = 4


@HOOKS.register_module()
class CollapseMonitorHook(Hook):
    """Log collapse measures of the encoder every ``interval`` iterations.

    Works with any model whose encoder (``model.<encoder>``) takes a
    ``[B, C, T, H, W]`` clip batch and, optionally, has ``blocks`` (the MME
    algorithm's ``backbone`` with no mask, a stock recognizer's
    ``VisionTransformer``). Without ``blocks`` the share is measured on the
    encoder's output and no singular values are logged.

    Args:
        interval (int): Measure every ``interval`` iterations (every
            ``interval`` epochs with ``by_epoch``). Defaults to 500.
        by_epoch (bool): Count ``interval`` in epochs (measured at the end
            of the epoch). Defaults to False.
        num_clips (int): Probe clips (>= 4), taken from the first training
            batches (at most ``max_batches`` of them). The participation
            ratio is at most ``num_clips - 1``. Defaults to 16.
        max_batches (int): Batches collected for the probe clips at most.
            Defaults to 4.
        at_start (bool): Also measure once the probe clips are collected,
            before the first update that follows. Defaults to True.
        encoder (str): Attribute of the (unwrapped) model holding the
            encoder. Defaults to ``'backbone'``.
        share_max (float): Collapse flag threshold on the constant share.
            Defaults to 0.9.
        pr_min (float): Collapse flag threshold on the participation ratio.
            Defaults to 1.5.
    """

    priority = 'NORMAL'

    def __init__(self,
                 interval: int = 500,
                 by_epoch: bool = False,
                 num_clips: int = 16,
                 max_batches: int = 4,
                 at_start: bool = True,
                 encoder: str = 'backbone',
                 share_max: float = SHARE_MAX,
                 pr_min: float = PR_MIN) -> None:
        if interval < 1 or num_clips < MIN_CLIPS or max_batches < 1:
            raise ValueError(
                'CollapseMonitorHook: interval and max_batches must be >= 1 '
                f'and num_clips >= {MIN_CLIPS} (got interval={interval}, num_clips='
                f'{num_clips}, max_batches={max_batches}); fix the hook in '
                "the config's custom_hooks")
        self.interval = interval
        self.by_epoch = by_epoch
        self.num_clips = num_clips
        self.max_batches = max_batches
        self.at_start = at_start
        self.encoder = encoder
        self.share_max = share_max
        self.pr_min = pr_min
        self._parts: List[Tensor] = []
        self._seen = 0
        self._inputs: Optional[Tensor] = None
        self._collapsed = False
        self.last: Optional[Dict] = None

    def _model(self, runner) -> nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _encoder(self, runner) -> nn.Module:
        model = self._model(runner)
        enc = getattr(model, self.encoder, None)
        if not isinstance(enc, nn.Module):
            raise AttributeError(
                f'CollapseMonitorHook: the model ({type(model).__name__}) '
                f"has no module '{self.encoder}'; set the hook's encoder= "
                'to the attribute holding the encoder')
        return enc

    @torch.no_grad()
    def _collect(self, runner, data_batch) -> None:
        """Add the clips of one training batch to the probe clips."""
        data = self._model(runner).data_preprocessor(data_batch, False)
        x = data['inputs']
        if isinstance(x, (list, tuple)):
            x = torch.stack(list(x))
        if x.dim() == 6:  # [B, views, C, T, H, W]
            x = x.flatten(0, 1)
        have = sum(p.shape[0] for p in self._parts)
        self._parts.append(x[:self.num_clips - have].detach().clone())
        self._seen += 1
        have += self._parts[-1].shape[0]
        if have >= self.num_clips or self._seen >= self.max_batches:
            if have < MIN_CLIPS:
                raise ValueError(
                    f'CollapseMonitorHook: {self._seen} training batch(es) '
                    f'gave {have} clip(s); the participation ratio needs '
                    f'{MIN_CLIPS} or more: raise the hook\'s max_batches or '
                    'the batch size')
            self._inputs = torch.cat(self._parts)
            self._parts = []

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        """Collect the probe clips from the first training batches."""
        if (self._inputs is not None or data_batch is None
                or not is_main_process()):
            return
        self._collect(runner, data_batch)
        if self._inputs is not None and self.at_start:
            self.measure(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Measure every ``interval`` iterations."""
        if not self.by_epoch and self.every_n_train_iters(
                runner, self.interval):
            self.measure(runner)

    def after_train_epoch(self, runner) -> None:
        """Measure every ``interval`` epochs with ``by_epoch``."""
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.measure(runner)

    @torch.no_grad()
    def measure(self, runner) -> Optional[Dict]:
        """Measure, log and return the collapse measures (None before the
        probe clips are collected and on processes other than the main
        one)."""
        if self._inputs is None or not is_main_process():
            return None
        enc = self._encoder(runner)
        blocks = getattr(enc, 'blocks', None)
        blocks = list(blocks) if isinstance(blocks, nn.Module) else []
        captured = []
        handle = None
        if blocks:
            handle = blocks[-1].register_forward_hook(
                lambda m, i, o: captured.append(
                    o[0] if isinstance(o, (tuple, list)) else o))
        param = next(enc.parameters(), None)
        x = self._inputs
        if param is not None and param.is_floating_point():
            x = x.to(param.dtype)  # e.g. a model cast to bf16
        was_training = enc.training
        enc.eval()
        try:
            out = enc(x)
        finally:
            enc.train(was_training)
            if handle is not None:
                handle.remove()
        if isinstance(out, (tuple, list)):
            out = out[-1]
        out = out.float()
        if out.dim() == 3:  # [B, N, C] tokens
            pooled = out.mean(1)
        elif out.dim() > 3:  # [B, C, ...] feature map
            pooled = out.flatten(2).mean(2)
        else:
            pooled = out
        tokens = captured[-1].float() if captured else out
        if tokens.dim() > 3:  # feature map: channels last
            tokens = tokens.flatten(2).transpose(1, 2)
        res = collapse_measures(pooled, blocks, tokens=tokens,
                                share_max=self.share_max, pr_min=self.pr_min)
        self.last = res
        hub = runner.message_hub
        hub.update_scalar('train/collapse_share', res['constant_share'])
        hub.update_scalar('train/collapse_pr', res['participation_ratio'])
        for i, r in enumerate(res['sv_ratio']):
            hub.update_scalar(f'train/collapse_sv_ratio_block{i}', r)
        hub.update_scalar('train/collapsed', float(res['collapsed']))
        sv = ', '.join(f'{r:.2f}' for r in res['sv_ratio'])
        print_log(
            f'CollapseMonitorHook at iter {runner.iter}: constant share '
            f"{res['constant_share']:.3f}, participation ratio "
            f"{res['participation_ratio']:.2f} ({pooled.shape[0]} clips), "
            f'top/median singular value per block [{sv}]',
            logger='current')
        if res['collapsed'] and not self._collapsed:
            print_log(
                f'CollapseMonitorHook: the encoder looks collapsed at iter '
                f"{runner.iter}: constant share {res['constant_share']:.3f} "
                f'(> {self.share_max} flags it) or participation ratio '
                f"{res['participation_ratio']:.2f} (< {self.pr_min}); its "
                'output barely depends on the input (docs/'
                'synthetic_benchmark.md, "Collapse monitor")',
                logger='current', level=30)
        self._collapsed = res['collapsed']
        return res
