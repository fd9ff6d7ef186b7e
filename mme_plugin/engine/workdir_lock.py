"""One training run per work dir: a lock file that refuses a second run.

Two runs started in one work dir used to both exit 0 while their
checkpoints and ``last_checkpoint`` overwrote each other. With
:func:`patch_runner` (applied by :func:`mme_plugin.compat.apply_all`)
``Runner.train`` first takes ``<work_dir>/.mme_run.lock``:

* the lock file is created atomically (``O_CREAT | O_EXCL``) and records
  host, pid, the process start time (``/proc/<pid>/stat``), the boot id,
  the start date and the command line;
* it is removed when ``train`` returns or raises, on SIGTERM (the handler
  removes it and lets the signal end the process as before) and at
  interpreter exit (``atexit``);
* a lock left by a run killed with SIGKILL (or a crashed machine) is
  stale when it is of this host and its pid is not running, or now belongs
  to another process (another start time or boot id): it is taken over
  with a log line;
* a lock left by an earlier instance of the same Slurm job (same
  ``SLURM_JOB_ID``, another host or ``SLURM_RESTART_COUNT``: a requeued
  job) is stale too;
* a lock of a live run, or of another host (whose processes cannot be
  checked from here), is refused with :class:`WorkDirInUseError` naming
  host, pid, start and command, and saying to delete the file if that run
  is known to be gone.

In distributed runs only global rank 0 takes the lock (all ranks share the
work dir) and tells the other ranks the outcome, so every rank stops on a
refusal. ``tools/test.py`` takes no lock: testing only reads checkpoints
(written atomically) and logs into its own time-stamped folder, and
evaluating a checkpoint while the run goes on is a normal workflow.
"""
import atexit
import json
import os
import os.path as osp
import shlex
import signal
import socket
import sys
import threading
import time
import uuid
from typing import Any, Optional

from mmengine.logging import print_log

__all__ = ['LOCK_NAME', 'WorkDirInUseError', 'WorkDirLock', 'patch_runner']

LOCK_NAME = '.mme_run.lock'
_ORIG: dict = {}


class WorkDirInUseError(RuntimeError):
    """Another run holds the work dir's lock file."""


def process_start(pid: int) -> Optional[int]:
    """Start time of process ``pid`` in clock ticks after boot (field 22 of
    ``/proc/<pid>/stat``), or None where there is no such file."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            stat = f.read().decode('ascii', 'replace')
    except OSError:
        return None
    # the command name (field 2) may hold spaces and ')': split after it
    fields = stat[stat.rfind(')') + 2:].split()
    try:
        return int(fields[19])  # field 22; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def _boot_id() -> Optional[str]:
    try:
        with open('/proc/sys/kernel/random/boot_id') as f:
            return f.read().strip()
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _command(pid: int) -> str:
    """The command line of process ``pid`` (``/proc/<pid>/cmdline``; this
    process: ``sys.argv`` where there is no such file)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            args = f.read().split(b'\0')
        return shlex.join(a.decode(errors='replace') for a in args if a)
    except OSError:
        return shlex.join(sys.argv) if pid == os.getpid() else ''


def lock_record(pid: Optional[int] = None) -> dict:
    """What a lock file records about the process ``pid`` (default: this
    one)."""
    pid = os.getpid() if pid is None else pid
    return dict(
        host=socket.gethostname(),
        pid=pid,
        process_start=process_start(pid),
        boot_id=_boot_id(),
        started=time.strftime('%Y-%m-%d %H:%M:%S %z'),
        command=_command(pid),
        slurm_job=os.environ.get('SLURM_JOB_ID'),
        slurm_restart=os.environ.get('SLURM_RESTART_COUNT', '0'),
        token=uuid.uuid4().hex)


def _requeued(holder: dict) -> Optional[str]:
    """Why ``holder`` is an earlier instance of this Slurm job, or None.

    Slurm runs one instance of a job at a time; a requeued job (after a
    node failure, a preemption or ``scontrol requeue``) keeps its job id,
    may land on another node, and counts up ``SLURM_RESTART_COUNT``. A
    lock of the same job id from another host or another restart count is
    therefore left by a run that is gone (killed without running its exit
    handlers).
    """
    job = os.environ.get('SLURM_JOB_ID')
    if not job or holder.get('slurm_job') != job:
        return None
    restart = os.environ.get('SLURM_RESTART_COUNT', '0')
    if holder.get('host') != socket.gethostname() or \
            holder.get('slurm_restart', '0') != restart:
        return (f'it was left by an earlier instance of Slurm job {job} '
                f'(restart {holder.get("slurm_restart", "0")}, host '
                f'{holder.get("host")}), which was requeued')
    return None


def _stale_reason(holder: dict) -> Optional[str]:
    """Why the lock of ``holder`` is stale, or None if it may be live."""
    requeued = _requeued(holder)
    if requeued:
        return requeued
    if holder.get('host') != socket.gethostname():
        return None  # another host: cannot be checked from here
    pid = holder.get('pid')
    if not isinstance(pid, int) or pid <= 0:
        return None
    boot = _boot_id()
    if holder.get('boot_id') and boot and holder['boot_id'] != boot:
        return 'the machine has restarted since'
    if not _pid_alive(pid):
        return f'process {pid} is not running'
    start = process_start(pid)
    if holder.get('process_start') is not None and start is not None and \
            start != holder['process_start']:
        return f'pid {pid} now belongs to another process'
    return None


class WorkDirLock:
    """The lock file of one work dir.

    Args:
        work_dir (str): The work directory (must exist).
        name (str): File name of the lock inside ``work_dir``.
    """

    def __init__(self, work_dir: str, name: str = LOCK_NAME) -> None:
        self.work_dir = work_dir
        self.path = osp.join(work_dir, name)
        self._record: Optional[dict] = None
        self._owner_pid: Optional[int] = None
        self._prev_sigterm: Any = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock through this object."""
        return self._record is not None and self._owner_pid == os.getpid()

    def _read(self) -> Optional[tuple]:
        """``(raw bytes, record)`` of the lock file, None if it is gone.

        A file that does not parse is read again for up to a second (its
        writer may be between creating and writing it); then the record is
        None.
        """
        for _ in range(20):
            try:
                with open(self.path, 'rb') as f:
                    raw = f.read()
            except FileNotFoundError:
                return None
            try:
                record = json.loads(raw.decode())
                if isinstance(record, dict):
                    return raw, record
            except (UnicodeDecodeError, ValueError):
                pass
            time.sleep(0.05)
        return raw, None

    def _refusal(self, holder: Optional[dict]) -> WorkDirInUseError:
        fix = (f'Wait for that run to end or use another --work-dir; if you '
               f'are sure no run uses {self.work_dir}, delete {self.path}.')
        if holder is None:
            return WorkDirInUseError(
                f'work dir {self.work_dir} is locked by {self.path}, which '
                f'cannot be read. {fix}')
        where = 'this host' if holder.get('host') == socket.gethostname() \
            else (f'host {holder.get("host")} (another host: whether that '
                  'run is alive cannot be checked from here)')
        return WorkDirInUseError(
            f'work dir {self.work_dir} is in use by another run: {self.path} '
            f'names pid {holder.get("pid")} on {where}, started '
            f'{holder.get("started")}, command: '
            f'{holder.get("command") or "?"}. {fix}')

    def _take_over(self, raw: bytes, holder: dict, reason: str) -> None:
        """Remove the stale lock whose content is ``raw``, unless another
        process replaced it meanwhile (a ``.takeover`` file serialises
        concurrent takers)."""
        mutex = self.path + '.takeover'
        try:
            fd = os.open(mutex, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a taker that died between the two lines below
                if time.time() - osp.getmtime(mutex) > 30:
                    os.remove(mutex)
            except OSError:
                pass
            time.sleep(0.05)
            return
        os.close(fd)
        try:
            now = self._read()
            if now is not None and now[0] == raw:
                os.remove(self.path)
                print_log(f'taking over the stale lock {self.path} '
                          f'({reason}) of pid {holder.get("pid")}, started '
                          f'{holder.get("started")}, command: '
                          f'{holder.get("command") or "?"}',
                          logger='current', level=30)
        finally:
            os.remove(mutex)

    def acquire(self) -> None:
        """Create the lock file, taking over a stale one.

        Raises:
            WorkDirInUseError: Another run (live, of another host, or
                unreadable) holds the lock.
        """
        if self.held:
            return
        record = lock_record()
        data = json.dumps(record, indent=1).encode()
        for _ in range(50):
            self._install_exit_handlers()  # before the file can exist
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except BaseException as e:
                self._remove_exit_handlers()
                if not isinstance(e, FileExistsError):
                    raise
                found = self._read()
                if found is None:
                    continue  # removed meanwhile: try again
                raw, holder = found
                reason = _stale_reason(holder) if holder else None
                if reason is None:
                    raise self._refusal(holder) from None
                self._take_over(raw, holder, reason)
                continue
            self._record, self._owner_pid = record, os.getpid()
            try:
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except BaseException:  # e.g. disk full: leave no empty lock
                os.remove(self.path)
                self._record = None
                self._remove_exit_handlers()
                raise
            return
        raise WorkDirInUseError(
            f'could not take the lock {self.path}: other processes keep '
            'creating it. Start one run per work dir.')

    def release(self) -> None:
        """Remove the lock file if this process holds it (idempotent)."""
        if not self.held:
            return
        found = self._read()
        if found is not None and found[1] is not None and \
                found[1].get('token') == self._record['token']:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self._record = None
        self._remove_exit_handlers()

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        prev = self._prev_sigterm
        if os.getpid() != self._owner_pid:  # a forked child (data worker)
            prev = signal.SIG_DFL
        else:
            self.release()
        if callable(prev):
            prev(signum, frame)
        else:  # the default: end the process by the signal, as before
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    def _install_exit_handlers(self) -> None:
        self._owner_pid = os.getpid()
        atexit.register(self.release)
        if threading.current_thread() is not threading.main_thread():
            return
        prev = signal.getsignal(signal.SIGTERM)
        if prev in (signal.SIG_IGN, None):
            return
        self._prev_sigterm = prev
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _remove_exit_handlers(self) -> None:
        atexit.unregister(self.release)
        if self._prev_sigterm is None:
            return
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, self._prev_sigterm)
        self._prev_sigterm = None

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _lock_for(runner: Any) -> Optional[WorkDirLock]:
    """Take ``runner``'s work-dir lock on global rank 0 and share the
    outcome with the other ranks; every rank raises on a refusal."""
    from mmengine.dist import broadcast_object_list, get_rank, get_world_size
    lock, error, failure = None, None, None
    if get_rank() == 0:
        try:
            lock = WorkDirLock(runner.work_dir)
            lock.acquire()
        except Exception as e:  # noqa: BLE001  (told to every rank)
            error, failure = e, f'{type(e).__name__}: {e}'
    if get_world_size() > 1:
        box = [failure]
        broadcast_object_list(box, src=0)
        failure = box[0]
    if error is not None:
        raise error
    if failure is not None:
        raise WorkDirInUseError(f'rank 0 could not lock the work dir: '
                                f'{failure}')
    return lock


def _train(self, *args: Any, **kwargs: Any) -> Any:
    """``Runner.train`` holding the work dir's lock."""
    lock = _lock_for(self)
    try:
        return _ORIG['train'](self, *args, **kwargs)
    finally:
        if lock is not None:
            lock.release()


def patch_runner() -> None:
    """Make ``Runner.train`` hold the work-dir lock (idempotent)."""
    from mmengine.runner import Runner
    if 'train' not in _ORIG:
        _ORIG['train'] = Runner.train
        Runner.train = _train
