"""Stop a run whose loss or weights turn non-finite; never save or report
from non-finite numbers.

Without this, a fine-tune that diverges (learning rate far too high) or that
starts from a checkpoint holding a NaN runs to the end with ``loss: nan``,
writes checkpoints full of NaN and exits 0, and ``tools/test.py`` prints an
accuracy computed from NaN scores. :class:`NonFiniteLossHook` (in the
``custom_hooks`` of every shipped training config) makes each of these an
error naming the cause:

* before the first iteration, the model's parameters and buffers are checked
  once: non-finite values there come from the loaded checkpoint (``load_from``,
  the ``--resume`` file, a ``Pretrained`` init), not from the learning rate;
* every iteration, a device-side flag records whether the loss is finite
  (``torch.isfinite``, no host sync); the flags are read once every
  ``interval`` iterations, at the end of each epoch and before each
  checkpoint save. A non-finite loss stops the run, naming the iteration and
  the last checkpoint written before it. Under fp16 with a dynamic loss
  scaler (``AmpOptimWrapper(loss_scale='dynamic')``) the scaler skips the
  update of an overflowing step, so an occasional non-finite loss is
  tolerated: the run stops only when the parameters became non-finite or
  more than ``max_skips`` consecutive losses were non-finite;
* before a checkpoint is written, every floating tensor of its
  ``state_dict`` is checked (one fused check); a non-finite one stops the
  run before the file is written;
* during validation and testing, the number of clips whose ``pred_score``
  holds NaN / inf is counted, and the run stops at the last batch, before
  the evaluator computes (and the logger prints) any metric.
"""
import math
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper

from mme_plugin.registry import HOOKS

__all__ = ['NonFiniteError', 'NonFiniteLossHook', 'nonfinite_names']

# How many tensor names an error message lists before "and N more".
_MAX_NAMES = 8


class NonFiniteError(FloatingPointError):
    """A loss, weight or score that should be finite is NaN or infinite."""


def nonfinite_names(named: Iterable[Tuple[str, Any]]) -> List[str]:
    """Names of the floating tensors that hold a NaN or an infinity.

    One fused check per device: a 0-dim ``isfinite(t).all()`` per tensor,
    stacked and copied to the host once.

    Args:
        named (Iterable[tuple[str, Any]]): ``(name, value)`` pairs, e.g.
            ``model.named_parameters()`` or a ``state_dict().items()``;
            values that are not floating (or complex) tensors are ignored.

    Returns:
        list[str]: The names of the non-finite tensors, in input order.
    """
    groups: Dict[torch.device, Tuple[List[int], List[torch.Tensor]]] = {}
    names = []
    for name, value in named:
        if not isinstance(value, torch.Tensor) or value.device.type == 'meta':
            continue
        if not (value.is_floating_point() or value.is_complex()):
            continue
        index, flags = groups.setdefault(value.device, ([], []))
        index.append(len(names))
        flags.append(torch.isfinite(value.detach()).all())
        names.append(name)
    bad = set()
    for index, flags in groups.values():
        finite = torch.stack(flags).cpu().tolist()
        bad.update(i for i, ok in zip(index, finite) if not ok)
    return [names[i] for i in sorted(bad)]


def _model_device(runner) -> torch.device:
    """The device of the model's first parameter (CPU if it has none): where
    a collective's tensor must live (NCCL needs CUDA tensors)."""
    for param in _unwrap(runner.model).parameters():
        return param.device
    return torch.device('cpu')


def _listed(names: Sequence[str]) -> str:
    """``names`` joined, the first :data:`_MAX_NAMES` of them."""
    shown = ', '.join(names[:_MAX_NAMES])
    more = len(names) - _MAX_NAMES
    return f'{shown} and {more} more' if more > 0 else shown


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DDP / FSDP wrapper."""
    return model.module if is_model_wrapper(model) else model


def _model_tensors(runner) -> List[Tuple[str, torch.Tensor]]:
    """Parameters and buffers of the runner's (unwrapped) model."""
    model = _unwrap(runner.model)
    return list(model.named_parameters()) + list(model.named_buffers())


def _skips_tolerated(optim_wrapper) -> bool:
    """Whether ``optim_wrapper`` skips overflowing steps by itself: an
    ``AmpOptimWrapper`` in fp16 with a dynamic loss scaler."""
    wrappers = getattr(optim_wrapper, 'optim_wrappers', None)
    wrappers = list(wrappers.values()) if wrappers else [optim_wrapper]
    return any(
        isinstance(w, AmpOptimWrapper)
        and getattr(w, '_scale_update_param', 0) is None
        and getattr(w, 'cast_dtype', None) in (None, torch.float16)
        for w in wrappers)


def _pretrained_sources(cfg: Any) -> List[str]:
    """Checkpoints named by ``Pretrained`` inits / ``pretrained`` keys."""
    found = []
    if isinstance(cfg, dict):
        if cfg.get('type') == 'Pretrained' and cfg.get('checkpoint'):
            found.append(str(cfg['checkpoint']))
        if isinstance(cfg.get('pretrained'), str):
            found.append(cfg['pretrained'])
        for value in cfg.values():
            found += _pretrained_sources(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            found += _pretrained_sources(value)
    return found


def _weights_source(runner) -> str:
    """Where the runner's starting weights came from, in words."""
    load_from = getattr(runner, '_load_from', None)
    if getattr(runner, '_resume', False):
        if load_from is None:
            try:  # the (patched) finder that load_or_resume used
                from mmengine.runner import runner as runner_mod
                load_from = runner_mod.find_latest_checkpoint(runner.work_dir)
            except Exception:  # noqa: BLE001  (only to name the file)
                load_from = None
        return (f'the resumed checkpoint {load_from}' if load_from else
                f'the checkpoint --resume picked in {runner.work_dir}')
    sources = [f'load_from={load_from}'] if load_from else []
    cfg = getattr(runner, 'cfg', None)
    model_cfg = cfg.get('model') if hasattr(cfg, 'get') else None
    sources += [f'Pretrained {c}' for c in _pretrained_sources(model_cfg)]
    return ', '.join(sources) or 'the model initialisation (no checkpoint)'


def _last_checkpoint(runner) -> Optional[str]:
    """The last checkpoint this run wrote (or the work dir's latest)."""
    last = runner.message_hub.get_info('last_ckpt')
    if last:
        return str(last)
    marker = osp.join(runner.work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            return f.read().strip() or None
    return None


def _scores(outputs: Any) -> List[torch.Tensor]:
    """The ``pred_score`` tensors of a val / test step's outputs."""
    scores = []
    for sample in outputs if isinstance(outputs, (list, tuple)) else []:
        getter = getattr(sample, 'get', None)
        score = getter('pred_score', None) if callable(getter) else None
        if isinstance(score, torch.Tensor):
            scores.append(score)
    return scores


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training when the loss or the weights turn non-finite; refuse to
    save non-finite checkpoints and to report metrics of non-finite scores.

    Host syncs: one every ``interval`` training iterations, at each epoch end
    and before each checkpoint save (plus a fused weight check there and once
    before training). Every error is a :class:`NonFiniteError` that
    ``tools/train.py`` / ``tools/test.py`` print as ``error: ...``.

    Args:
        interval (int): Read the per-iteration loss flags every this many
            training iterations. Defaults to 10.
        max_skips (int): With an fp16 dynamic loss scaler, the most
            consecutive non-finite losses tolerated (the scaler skips those
            updates) before the run stops. Defaults to 10.
        tolerate_skips (bool, optional): Whether isolated non-finite losses
            are tolerated (as above); None: exactly when the optimizer
            wrapper is an fp16 ``AmpOptimWrapper`` with a dynamic loss scale.
            bf16 / fp32 training stops at any non-finite loss.
        check_init (bool): Check the weights once before training.
            Defaults to True.
        check_checkpoints (bool): Check every checkpoint's ``state_dict``
            before it is written. Defaults to True.
        check_scores (bool): Check the ``pred_score`` of validation and test
            outputs. Defaults to True.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 interval: int = 10,
                 max_skips: int = 10,
                 tolerate_skips: Optional[bool] = None,
                 check_init: bool = True,
                 check_checkpoints: bool = True,
                 check_scores: bool = True) -> None:
        if interval < 1:
            raise ValueError(f'NonFiniteLossHook: interval must be >= 1, got '
                             f'{interval}')
        if max_skips < 0:
            raise ValueError('NonFiniteLossHook: max_skips must be >= 0, got '
                             f'{max_skips}')
        self.interval = interval
        self.max_skips = max_skips
        self.tolerate_skips = tolerate_skips
        self.check_init = check_init
        self.check_checkpoints = check_checkpoints
        self.check_scores = check_scores
        self._tolerant = bool(tolerate_skips)
        self._start_iter = 0
        self._flags: List[torch.Tensor] = []  # device-side, one per iter
        self._iters: List[int] = []  # their 1-based iteration numbers
        self._consecutive = 0  # non-finite losses in a row, host side
        self._skipped = 0  # tolerated non-finite losses, host side
        self._bad_scores: Optional[torch.Tensor] = None
        self._num_scores = 0

    # ------------------------------------------------------------- training
    def before_train(self, runner) -> None:
        """Check the starting weights once (after loading / resuming)."""
        self._tolerant = (_skips_tolerated(runner.optim_wrapper)
                          if self.tolerate_skips is None else
                          bool(self.tolerate_skips))
        self._start_iter = runner.iter + 1
        self._flags, self._iters = [], []
        self._consecutive = self._skipped = 0
        if not self.check_init:
            return
        bad = nonfinite_names(_model_tensors(runner))
        if bad:
            raise NonFiniteError(
                'the weights were non-finite from the start: before the '
                f'first iteration, {len(bad)} parameter/buffer tensors hold '
                f'NaN or inf ({_listed(bad)}). They come from '
                f'{_weights_source(runner)}: use another checkpoint (or '
                'repair this one); lowering the learning rate will not help.')

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        """Record (on the device) whether this iteration's loss is finite;
        read the records every ``interval`` iterations."""
        loss = outputs.get('loss') if isinstance(outputs, dict) else None
        if isinstance(loss, torch.Tensor):
            self._flags.append(torch.isfinite(loss.detach()).all())
        elif isinstance(loss, (int, float)):
            self._flags.append(torch.tensor(math.isfinite(loss)))
        else:
            return
        self._iters.append(runner.iter + 1)
        if self._saves_now(runner, by_epoch=False):
            self._check_before_save(runner, runner.iter + 1)
        elif len(self._flags) >= self.interval:
            self._check_losses(runner)

    def after_train_epoch(self, runner) -> None:
        """Read the loss records at the end of each epoch (and the weights,
        on every rank, if a checkpoint is saved now)."""
        if self._saves_now(runner, by_epoch=True):
            self._check_before_save(runner, runner.iter)
        else:
            self._check_losses(runner)

    @staticmethod
    def _saves_now(runner, by_epoch: bool) -> bool:
        """Whether a ``CheckpointHook`` saves after this iteration / epoch
        (this hook runs before it: higher priority)."""
        from mmengine.hooks import CheckpointHook
        for hook in getattr(runner, 'hooks', ()):
            if not isinstance(hook, CheckpointHook) or \
                    hook.by_epoch != by_epoch or hook.interval <= 0:
                continue
            if by_epoch:
                due = hook.every_n_epochs(runner, hook.interval) or (
                    hook.save_last and hook.is_last_train_epoch(runner))
            else:
                due = hook.every_n_train_iters(runner, hook.interval) or (
                    hook.save_last and hook.is_last_train_iter(runner))
            if due:
                return True
        return False

    def _check_before_save(self, runner, iteration: int) -> None:
        """Collective checks before a save, on every rank: the loss flags and
        the weights. ``Runner.save_checkpoint`` runs on rank 0 only, so a
        refusal there alone would leave the other ranks waiting in the next
        collective; here every rank stops together."""
        self._check_losses(runner)
        if not self.check_checkpoints:
            return
        bad = nonfinite_names(_model_tensors(runner))
        flag = torch.tensor([1 if bad else 0], dtype=torch.int32,
                            device=_model_device(runner))
        all_reduce(flag, op='max')
        if int(flag.item()):
            raise NonFiniteError(
                f'refusing to save a checkpoint at iteration {iteration}'
                f' (epoch {runner.epoch + 1}): the weights hold NaN or inf '
                f'({_listed(bad) if bad else "on another rank"}). '
                f'{self._advice(runner)}')

    def after_train(self, runner) -> None:
        """Read the last loss records (iteration-based loops)."""
        self._check_losses(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Refuse to save after a non-finite loss (bf16 / fp32) or with a
        non-finite ``state_dict``: the checkpoint is not written.

        ``Runner.save_checkpoint`` runs on rank 0 only, so the pending loss
        flags are read here without a collective and kept (every rank reads
        them again at the same iteration).
        """
        if self._flags and not self._tolerant:
            finite = torch.stack(self._flags).cpu().tolist()
            bad_iters = [it for it, ok in zip(self._iters, finite) if not ok]
            if bad_iters:
                raise NonFiniteError(
                    self._diverged(runner, bad_iters, self._iters))
        if not self.check_checkpoints:
            return
        for key in ('state_dict', 'ema_state_dict'):
            state = checkpoint.get(key)
            if not isinstance(state, dict):
                continue
            bad = nonfinite_names(state.items())
            if bad:
                raise NonFiniteError(
                    f'refusing to save a checkpoint at iteration {runner.iter}'
                    f' (epoch {runner.epoch + 1}): {len(bad)} tensors of its '
                    f'{key} hold NaN or inf ({_listed(bad)}). '
                    f'{self._advice(runner)}')

    def _check_losses(self, runner) -> None:
        """One host sync: read the flags gathered since the last read."""
        if not self._flags:
            return
        finite = torch.stack(self._flags).to(torch.int32)
        all_reduce(finite, op='min')  # non-finite on any rank: on all
        flags, iters = finite.cpu().tolist(), self._iters
        self._flags, self._iters = [], []
        bad_iters, longest = [], self._consecutive
        for it, ok in zip(iters, flags):
            self._consecutive = 0 if ok else self._consecutive + 1
            longest = max(longest, self._consecutive)
            if not ok:
                bad_iters.append(it)
        if not bad_iters:
            return
        if not self._tolerant:
            raise NonFiniteError(self._diverged(runner, bad_iters, iters))
        bad = nonfinite_names(_model_tensors(runner))
        if bad:
            raise NonFiniteError(
                self._diverged(runner, bad_iters, iters, bad))
        if longest > self.max_skips:
            raise NonFiniteError(
                f'{self._diverged(runner, bad_iters, iters)} The fp16 loss '
                f'scaler skipped {longest} consecutive steps '
                f'(max_skips={self.max_skips}): the loss stays non-finite.')
        self._skipped += len(bad_iters)
        print_log(
            f'NonFiniteLossHook: non-finite loss at iteration(s) '
            f'{bad_iters}; the fp16 loss scaler skipped those updates and '
            f'the weights are finite ({self._skipped} skipped so far).',
            logger='current', level=30)

    def _diverged(self,
                  runner,
                  bad_iters: List[int],
                  iters: List[int],
                  bad_weights: Optional[List[str]] = None) -> str:
        """The message for a non-finite loss first seen at ``bad_iters[0]``.
        """
        first = bad_iters[0]
        if bad_weights is None:
            bad_weights = nonfinite_names(_model_tensors(runner))
        weights = (f' {len(bad_weights)} weight tensors are now non-finite '
                   f'({_listed(bad_weights)}).' if bad_weights else '')
        seen = (f'{len(bad_iters)} of iterations {iters[0]}-{iters[-1]} '
                'non-finite')
        if first == self._start_iter:
            cause = ('weights were non-finite from the start'
                     if bad_weights else 'the loss was non-finite from the '
                     'start')
            return (
                f'{cause}: the loss of the first iteration of this run '
                f'(iteration {first}, epoch {runner.epoch + 1}; {seen}) is '
                f'NaN or inf, before any update.{weights} Check the starting '
                f'weights ({_weights_source(runner)}) and the first batch; '
                'lowering the learning rate will not help.')
        return (f'training diverged at iteration {first} (epoch '
                f'{runner.epoch + 1}; {seen}): the loss is NaN or inf.'
                f'{weights} {self._advice(runner)}')

    def _advice(self, runner) -> str:
        """What to do about a divergence, and where to restart from."""
        try:
            lrs = runner.optim_wrapper.get_lr()
            lr = max(max(v) for v in lrs.values())
            lr_now = f' (current lr {lr:.3g})'
        except Exception:  # noqa: BLE001  (only for the message)
            lr_now = ''
        last = _last_checkpoint(runner)
        restart = (f'last good checkpoint: {last} (resume with --resume '
                   f'{last})' if last else 'last good checkpoint: none was '
                   f'saved in {runner.work_dir}')
        return (f'Lower the learning rate{lr_now} (and enable or tighten '
                'gradient clipping, optim_wrapper.clip_grad), and check the '
                f'data of that iteration; {restart}.')

    # ------------------------------------------------------- val and test
    def before_val_epoch(self, runner) -> None:
        """Reset the count of non-finite validation scores."""
        self._bad_scores, self._num_scores = None, 0

    def before_test_epoch(self, runner) -> None:
        """Reset the count of non-finite test scores."""
        self._bad_scores, self._num_scores = None, 0

    def after_val_iter(self,
                       runner,
                       batch_idx: int,
                       data_batch: Any = None,
                       outputs: Optional[Sequence] = None) -> None:
        """Count non-finite scores; stop at the last batch if there are."""
        self._count_scores(runner, 'val', batch_idx, outputs)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: Any = None,
                        outputs: Optional[Sequence] = None) -> None:
        """Count non-finite scores; stop at the last batch if there are."""
        self._count_scores(runner, 'test', batch_idx, outputs)

    def _count_scores(self, runner, mode: str, batch_idx: int,
                      outputs: Any) -> None:
        """Add this batch's non-finite scores (device side); at the last
        batch, read the count of every rank and raise if it is not 0."""
        if not self.check_scores:
            return
        scores = _scores(outputs)
        if scores:
            bad = torch.stack([
                torch.isfinite(s.detach()).all().logical_not()
                for s in scores
            ]).sum()
            self._bad_scores = (bad if self._bad_scores is None else
                                self._bad_scores + bad.to(
                                    self._bad_scores.device))
            self._num_scores += len(scores)
        try:
            loop = runner.val_loop if mode == 'val' else runner.test_loop
            last = batch_idx == len(loop.dataloader) - 1
        except (TypeError, AttributeError, RuntimeError):
            last = True  # unknown length: check every batch
        if not last:
            return
        # every rank reaches its last batch: one collective, same decision
        counts = torch.tensor(
            [0 if self._bad_scores is None else int(self._bad_scores),
             self._num_scores])
        if self._bad_scores is not None:
            counts = counts.to(self._bad_scores.device)
        all_reduce(counts)
        num_bad, num = (int(c) for c in counts.cpu())
        if num_bad:
            raise NonFiniteError(self._scores_message(runner, mode, num_bad,
                                                      num))

    def _scores_message(self, runner, mode: str, num_bad: int,
                        num: int) -> str:
        """The message for ``num_bad`` of ``num`` non-finite scores."""
        bad = nonfinite_names(_model_tensors(runner))
        why = (f'{len(bad)} weight tensors hold NaN or inf ({_listed(bad)})'
               if bad else 'the weights are finite, so the forward pass '
               'overflows (e.g. extreme weights, or fp16 inference)')
        if mode == 'test':
            return (f'the scores of {num_bad} of {num} test clips are NaN or '
                    f'inf: no metric is reported. Checkpoint: '
                    f'{getattr(runner, "_load_from", None)}; {why}.')
        last = _last_checkpoint(runner)
        return (f'the scores of {num_bad} of {num} validation clips are NaN '
                f'or inf at epoch {runner.epoch} (iteration {runner.iter}): '
                f'no metric is reported; {why}. Last checkpoint: '
                f'{last or "none"}.')
