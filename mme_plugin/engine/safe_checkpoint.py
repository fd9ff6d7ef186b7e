"""Checkpoints that survive a kill: atomic writes, delete-after-save, and
resuming from the newest checkpoint that loads.

mmengine 0.10.7 (``CheckpointHook._save_checkpoint_with_step``) deletes the
oldest kept checkpoint *before* writing the new one, writes the new file in
place, and ``find_latest_checkpoint`` trusts the ``last_checkpoint`` text
file. A kill during a save with ``max_keep_ckpts=1`` therefore left a
truncated ``epoch_2.pth``, no ``epoch_1.pth``, and a ``last_checkpoint``
naming the deleted file: all training lost. The shims here (applied by
:func:`mme_plugin.compat.apply_all`) change that for every entry point:

* :func:`atomic_save_checkpoint`: a local checkpoint is written to a
  temporary file in the same directory and renamed over the target
  (``os.replace``), so a checkpoint file is either complete or absent;
* :func:`save_checkpoint_with_step`: the new checkpoint and
  ``last_checkpoint`` are written first, and only then the checkpoint that
  falls out of ``max_keep_ckpts`` is deleted. ``max_keep_ckpts=None`` means
  "keep all" (mmengine compares ``None > 0`` and raises a TypeError);
* :func:`find_loadable_checkpoint`: ``--resume`` without a path picks the
  newest ``epoch_N.pth`` / ``iter_N.pth`` of the work dir (or the one
  ``last_checkpoint`` names) that opens as a checkpoint, and logs which one
  and which newer files it skipped and why.
"""
import glob
import io
import os
import os.path as osp
import re
import zipfile
from typing import Any, List, Optional, Tuple

from mmengine.logging import print_log

__all__ = [
    'atomic_save_checkpoint', 'save_checkpoint_with_step',
    'find_loadable_checkpoint', 'checkpoint_candidates', 'patch_all'
]

_ORIG: dict = {}
_STEP = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


def _atomic_write(data: bytes, filename: str) -> None:
    """Write ``data`` to ``filename`` through a same-directory temp file."""
    folder = osp.dirname(osp.abspath(filename))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder,
                   f'.{osp.basename(filename)}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_checkpoint(checkpoint: dict,
                           filename: str,
                           file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """mmengine's ``save_checkpoint``, atomic for local paths.

    Args:
        checkpoint (dict): The checkpoint object.
        filename (str): Target path; remote URIs (``s3://``, ``pavi://``
            ...) go to mmengine's own writer unchanged.
        file_client_args (dict, optional): Passed to mmengine for remote
            paths.
        backend_args (dict, optional): Passed to mmengine for remote paths.
    """
    # Log buffers as plain data: the file then needs nothing beyond tensors
    # and plain data to load (mme_plugin.engine.plain_state).
    from .plain_state import plain_message_hub
    checkpoint = plain_message_hub(checkpoint)
    if '://' in str(filename) or file_client_args or backend_args:
        return _ORIG['save_checkpoint'](checkpoint, filename,
                                        file_client_args, backend_args)
    import torch
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    _atomic_write(buf.getvalue(), str(filename))


def save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
    """``CheckpointHook._save_checkpoint_with_step`` that deletes the
    checkpoint falling out of ``max_keep_ckpts`` only after the new one and
    ``last_checkpoint`` are safely written."""
    from mmengine.dist import is_main_process
    drop = None
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            drop = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    _atomic_write(str(self.last_ckpt).encode(),
                  osp.join(runner.work_dir, 'last_checkpoint'))
    if drop is not None and drop != step:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(drop))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # DeepSpeed saves folders
            self.file_backend.rmtree(path)


def _readable(path: str) -> Tuple[bool, str]:
    """Whether ``path`` is a complete torch checkpoint: a zip archive whose
    members all pass their CRC check (reads the file once, unpickles
    nothing)."""
    if osp.isdir(path):  # DeepSpeed checkpoint folders: trust them
        return True, ''
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
            if bad is not None:
                return False, f'corrupt member {bad}'
            return True, ''
        return False, 'not a complete torch checkpoint (truncated?)'
    except (OSError, zipfile.BadZipFile) as e:
        return False, f'{type(e).__name__}: {e}'


def checkpoint_candidates(work_dir: str) -> List[str]:
    """Checkpoints of a work dir, newest first: ``epoch_N`` / ``iter_N`` by
    step, then the file ``last_checkpoint`` names if it is another one."""
    found = []
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        m = _STEP.match(osp.basename(path))
        if m:
            found.append((int(m.group(2)), osp.getmtime(path), path))
    found.sort(reverse=True)
    paths = [p for _, _, p in found]
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named and osp.abspath(named) not in map(osp.abspath, paths):
            paths.insert(0, named)
    return paths


def find_loadable_checkpoint(work_dir: str) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads, or None.

    Logs the choice and every newer candidate skipped (missing, truncated,
    corrupt), so a resumed run says exactly where it continues from.

    Args:
        work_dir (str): The run's work directory.

    Returns:
        str | None: Path of the checkpoint to resume from.
    """
    skipped = []
    for path in checkpoint_candidates(work_dir):
        if not osp.exists(path):
            skipped.append(f'{path} (named by last_checkpoint; missing)')
            continue
        ok, why = _readable(path)
        if ok:
            msg = f'resuming from {path}, the newest checkpoint that loads'
            if skipped:
                msg += '; skipped: ' + '; '.join(skipped)
            print_log(msg, logger='current')
            return path
        skipped.append(f'{path} ({why})')
    if skipped:
        print_log(f'no loadable checkpoint in {work_dir}; skipped: ' +
                  '; '.join(skipped) + '. Starting from scratch.',
                  logger='current', level=30)
    return None


def _hook_init(self, *args: Any, **kwargs: Any) -> None:
    if kwargs.get('max_keep_ckpts', -1) is None:
        kwargs['max_keep_ckpts'] = -1  # None: keep all (mmengine: -1)
    _ORIG['hook_init'](self, *args, **kwargs)


def patch_all() -> None:
    """Install the three shims (idempotent)."""
    import mmengine.runner.checkpoint as ckpt_mod
    import mmengine.runner.runner as runner_mod
    from mmengine.hooks import CheckpointHook
    if 'save_checkpoint' in _ORIG:
        return
    _ORIG['save_checkpoint'] = ckpt_mod.save_checkpoint
    _ORIG['hook_init'] = CheckpointHook.__init__
    ckpt_mod.save_checkpoint = atomic_save_checkpoint
    runner_mod.save_checkpoint = atomic_save_checkpoint
    runner_mod.find_latest_checkpoint = find_loadable_checkpoint
    CheckpointHook._save_checkpoint_with_step = save_checkpoint_with_step
    CheckpointHook.__init__ = _hook_init
