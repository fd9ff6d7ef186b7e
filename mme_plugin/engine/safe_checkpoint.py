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
  newest ``epoch_N.pth`` / ``iter_N.pth`` of the work dir (by step) that
  opens as a checkpoint, and logs which one and which newer files it
  skipped and why. Only files inside the work dir (or the local
  ``CheckpointHook.out_dir`` of the run) are read: a ``last_checkpoint``
  naming a file elsewhere (a copied or reused work dir) is ignored with a
  log line; a checkpoint elsewhere is used only when passed explicitly
  (``--resume PATH``). The newer files that were skipped (truncated,
  corrupt, symlinks out of the work dir) are renamed to
  ``<name>.corrupt-<time>`` / ``<name>.outside-<time>`` before training
  goes on, so the resumed run never overwrites them.
"""
import contextvars
import glob
import io
import os
import os.path as osp
import re
import time
import zipfile
from typing import Any, List, Optional, Sequence, Tuple

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


# Local directories other than the work dir that the run's CheckpointHook
# writes to (its ``out_dir``); set by the ``Runner.load_or_resume`` shim.
_RUN_DIRS: contextvars.ContextVar = contextvars.ContextVar(
    'mme_checkpoint_dirs', default=())


def _within(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path``, symlinks resolved, lies under one of ``roots``
    (real paths)."""
    real = osp.realpath(path)
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep)
               for r in roots)


def _mtime(path: str) -> float:
    try:
        return osp.getmtime(path)
    except OSError:  # dangling symlink
        return os.lstat(path).st_mtime


def _named_by_last_checkpoint(
        work_dir: str, roots: Sequence[str]) -> Tuple[Optional[str], list]:
    """The file ``last_checkpoint`` names, if it lies in the work dir.

    A relative name is tried against the work dir, then the current
    directory. A name outside the work dir (an absolute path into the work
    dir a copy was made from, another run's file) is not returned; the
    work dir's own file of the same name is, if there is one.

    Returns:
        tuple: The in-work-dir path (it may be missing) or None, and the log
        notes (warnings) about the name.
    """
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        return None, []
    try:
        with open(last) as f:
            named = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        return None, [f'{last} is unreadable ({e}): ignored']
    if not named:
        return None, []
    if '://' in named:
        return None, [
            f'{last} names the remote checkpoint {named}: not read by '
            f'--resume without a path; pass --resume {named} to use it']
    named = osp.expanduser(named)
    options = [named] if osp.isabs(named) else [
        osp.join(work_dir, named), osp.abspath(named)]
    inside = [o for o in options if _within(o, roots)]
    for path in inside:
        if osp.lexists(path):
            return path, []
    if inside:
        return inside[0], []
    note = (f'{last} names {named}, outside the work dir {work_dir} (a '
            'copied or reused work dir?): ignored, the work dir\'s own '
            f'checkpoints are used; pass --resume {named} to resume from '
            'that file')
    own = osp.join(work_dir, osp.basename(named))
    return (own if osp.lexists(own) else None), [note]


def _ranked(work_dir: str,
            extra_dirs: Sequence[str] = ()) -> Tuple[List[str], list,
                                                     Optional[str]]:
    """Candidates newest first, log notes, and a missing file named by
    ``last_checkpoint`` (or None); see :func:`checkpoint_candidates`."""
    dirs = [work_dir, *extra_dirs]
    roots = list(dict.fromkeys(osp.realpath(d) for d in dirs))
    named, notes = _named_by_last_checkpoint(work_dir, roots)
    found, seen = [], set()
    for folder in dirs:
        for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
            m = _STEP.match(osp.basename(path))
            key = (osp.realpath(folder), osp.basename(path))
            if m and key not in seen:
                seen.add(key)
                found.append((m.group(1), int(m.group(2)), _mtime(path),
                              path))
    kinds = {kind for kind, _, _, _ in found}
    named_match = _STEP.match(osp.basename(named)) if named else None
    if named_match and named_match.group(1) in kinds:
        first = named_match.group(1)
    else:
        first = max(found, key=lambda c: c[2])[0] if found else ''
    if len(kinds) > 1:
        notes.append(f'{work_dir} holds both epoch_N and iter_N checkpoints; '
                     f'{first}_N ones (the kind last_checkpoint names, else '
                     'the kind written last) are tried first, each kind by '
                     'step')
    found.sort(key=lambda c: (c[0] == first, c[1], c[2]), reverse=True)
    paths = [c[3] for c in found]
    missing = None
    if named and osp.realpath(named) not in map(osp.realpath, paths):
        if not osp.lexists(named):
            missing = named
        else:  # another name (custom filename_tmpl): placed by its mtime
            t = _mtime(named)
            at = next((i for i, c in enumerate(found) if c[2] < t),
                      len(found))
            paths.insert(at, named)
    return paths, notes, missing


def checkpoint_candidates(work_dir: str,
                          extra_dirs: Sequence[str] = ()) -> List[str]:
    """Checkpoints of a run, newest first.

    ``epoch_N.pth`` / ``iter_N.pth`` of the work dir (and ``extra_dirs``) by
    step; with both kinds present, the kind of the file ``last_checkpoint``
    names (else of the file written last) comes first. A differently named
    file that ``last_checkpoint`` names inside the work dir is placed by its
    modification time. ``last_checkpoint`` naming a file outside the work
    dir adds nothing.

    Args:
        work_dir (str): The run's work directory.
        extra_dirs (Sequence[str]): Other local directories the run writes
            checkpoints to (``CheckpointHook.out_dir``).

    Returns:
        list[str]: Paths, newest first (may include symlinks that point out
        of the work dir; :func:`find_loadable_checkpoint` skips them).
    """
    return _ranked(work_dir, extra_dirs)[0]


def _move_aside(skipped: List[Tuple[str, str, str]]) -> None:
    """Rename each skipped newer file ``<name>.<tag>-<time>`` so the resumed
    run cannot overwrite it; rank 0 only."""
    from mmengine.dist import is_main_process
    if not is_main_process():
        return
    stamp = time.strftime('%Y%m%d_%H%M%S')
    for path, why, tag in skipped:
        target, n = f'{path}.{tag}-{stamp}', 1
        while osp.lexists(target):
            target, n = f'{path}.{tag}-{stamp}-{n}', n + 1
        try:
            os.rename(path, target)
        except OSError as e:
            raise RuntimeError(
                f'cannot move the skipped checkpoint {path} ({why}) aside '
                f'({e}); the resumed run would overwrite it. Move or delete '
                'it, then resume again.') from e
        print_log(f'moved {path} aside to {target} ({why}), so that the '
                  'resumed run does not overwrite it; delete it once it is '
                  'not needed', logger='current', level=30)


def find_loadable_checkpoint(work_dir: str,
                             extra_dirs: Sequence[str] = (),
                             move_aside: bool = False) -> Optional[str]:
    """The newest checkpoint of ``work_dir`` that loads, or None.

    Reads only files inside the work dir (and ``extra_dirs``). Logs the
    choice and every newer candidate skipped (missing, truncated, corrupt,
    a symlink out of the work dir), so a resumed run says exactly where it
    continues from.

    Args:
        work_dir (str): The run's work directory.
        extra_dirs (Sequence[str]): Other local directories the run writes
            checkpoints to (``CheckpointHook.out_dir``).
        move_aside (bool): Rename the skipped newer files
            (``<name>.corrupt-<time>``, ``<name>.outside-<time>``) so that
            the resumed run does not overwrite them. The ``--resume`` shim
            sets it; direct calls only look.

    Returns:
        str | None: Path of the checkpoint to resume from.

    Raises:
        RuntimeError: A skipped file could not be moved aside.
    """
    roots = list(dict.fromkeys(
        osp.realpath(d) for d in (work_dir, *extra_dirs)))
    paths, notes, missing = _ranked(work_dir, extra_dirs)
    for note in notes:
        print_log(note, logger='current', level=30)
    skipped: List[Tuple[str, str, str]] = []
    chosen = None
    for path in paths:
        if not _within(path, roots):
            skipped.append((path, f'a symlink to {osp.realpath(path)}, '
                            'outside the work dir; pass it with --resume '
                            'PATH to use it', 'outside'))
            continue
        ok, why = _readable(path)
        if ok:
            chosen = path
            break
        skipped.append((path, why, 'corrupt'))
    told = [f'{missing} (named by last_checkpoint; missing)'] if missing \
        else []
    told += [f'{path} ({why})' for path, why, _ in skipped]
    if chosen is not None:
        msg = f'resuming from {chosen}, the newest checkpoint that loads'
        if told:
            msg += '; skipped: ' + '; '.join(told)
        print_log(msg, logger='current')
    elif told:
        print_log(f'no loadable checkpoint in {work_dir}; skipped: ' +
                  '; '.join(told) + '. Starting from scratch.',
                  logger='current', level=30)
    if move_aside and skipped:
        _move_aside(skipped)
    return chosen


def _find_latest_for_runner(path: str) -> Optional[str]:
    """``find_latest_checkpoint`` as the runner calls it on ``--resume``:
    :func:`find_loadable_checkpoint` that moves skipped newer files aside."""
    return find_loadable_checkpoint(path, _RUN_DIRS.get(), move_aside=True)


def _hook_out_dirs(runner: Any) -> Tuple[str, ...]:
    """Local ``CheckpointHook.out_dir`` folders of ``runner`` other than its
    work dir, as the hook will complete them (``out_dir/<work dir name>``)."""
    from mmengine.hooks import CheckpointHook
    dirs = []
    for hook in getattr(runner, 'hooks', []):
        out = getattr(hook, 'out_dir', None)
        if not isinstance(hook, CheckpointHook) or out is None or \
                '://' in str(out):
            continue
        if osp.realpath(str(out)) == osp.realpath(runner.work_dir):
            continue
        dirs.append(osp.join(str(out),
                             osp.basename(runner.work_dir.rstrip(os.sep))))
    return tuple(dirs)


def _warn_newer_than(load_from: str, dirs: Sequence[str]) -> None:
    """Warn when an explicit ``--resume PATH`` is older than checkpoints of
    the work dir that the resumed run will overwrite."""
    m = _STEP.match(osp.basename(str(load_from)))
    if not m:
        return
    newer = []
    for folder in dirs:
        for path in glob.glob(osp.join(glob.escape(folder), '*.pth')):
            n = _STEP.match(osp.basename(path))
            if n and n.group(1) == m.group(1) and \
                    int(n.group(2)) > int(m.group(2)) and \
                    osp.realpath(path) != osp.realpath(load_from):
                newer.append(path)
    if newer:
        print_log(f'resuming from {load_from} as asked; the run will '
                  'overwrite the newer ' + ', '.join(sorted(newer)) +
                  ' when it saves those steps (move them away first to keep '
                  'them)', logger='current', level=30)


def _load_or_resume(self) -> None:
    """``Runner.load_or_resume`` that tells the checkpoint search about the
    hook's ``out_dir`` and warns before an explicit resume overwrites newer
    checkpoints."""
    extra = _hook_out_dirs(self)
    if self._resume and self._load_from is not None and \
            not self._has_loaded:
        _warn_newer_than(self._load_from, (self.work_dir, *extra))
    token = _RUN_DIRS.set(extra)
    try:
        return _ORIG['load_or_resume'](self)
    finally:
        _RUN_DIRS.reset(token)


def _hook_init(self, *args: Any, **kwargs: Any) -> None:
    if kwargs.get('max_keep_ckpts', -1) is None:
        kwargs['max_keep_ckpts'] = -1  # None: keep all (mmengine: -1)
    _ORIG['hook_init'](self, *args, **kwargs)


def patch_all() -> None:
    """Install the shims (idempotent)."""
    import mmengine.runner.checkpoint as ckpt_mod
    import mmengine.runner.runner as runner_mod
    from mmengine.hooks import CheckpointHook
    if 'save_checkpoint' in _ORIG:
        return
    _ORIG['save_checkpoint'] = ckpt_mod.save_checkpoint
    _ORIG['hook_init'] = CheckpointHook.__init__
    ckpt_mod.save_checkpoint = atomic_save_checkpoint
    runner_mod.save_checkpoint = atomic_save_checkpoint
    _ORIG['load_or_resume'] = runner_mod.Runner.load_or_resume
    runner_mod.find_latest_checkpoint = _find_latest_for_runner
    runner_mod.Runner.load_or_resume = _load_or_resume
    CheckpointHook._save_checkpoint_with_step = save_checkpoint_with_step
    CheckpointHook.__init__ = _hook_init
