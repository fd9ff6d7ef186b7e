"""Load checkpoints without running code from them, and refuse bad ones.

A ``.pth`` file is a pickle: loaded with ``torch.load(weights_only=False)``
it can run any code it carries, and users download official MME / VideoMAE
checkpoints from file hosts. Every checkpoint this project loads (mmengine's
``load_from``, ``--resume``, ``tools/test.py``, ``Pretrained`` init, both
converters, the benchmarks) goes through :func:`safe_torch_load`, which
reads the file with torch's own storage reader and this project's
:class:`~mme_plugin.engine.restricted_unpickler.RestrictedUnpickler`. That
unpickler can only build tensors, numeric numpy data, plain containers,
``argparse.Namespace`` (the release's ``args``) and mmengine's
``HistoryBuffer``; it never hands a real callable to the pickle machine, so
no combination of what a file names can call code (the threat model and the
reasoning are in ``docs/security.md``).

The loaded object is then checked:

* :class:`UnsafeCheckpointError` - the file names something outside the
  allow-list; the message names the file and the global;
* :class:`IncompleteCheckpointError` - the file is cut off or corrupt
  (a copy that stopped half-way, a full disk); the message names the file
  and its size;
* :class:`NonFiniteCheckpointError` - a weight or optimizer tensor holds
  NaN or Inf; the message names the file and the tensors. Training logs
  (``message_hub``, ``meta``) are not checked: a logged NaN loss of a
  skipped fp16 step is history, not a weight.

Full unpickling stays an explicit opt-in for files the user trusts:
``--trust-checkpoint`` on the tools, or ``MME_TRUST_CHECKPOINTS=1`` for
stock mmengine entry points (a warning is printed; the integrity and
finiteness checks still run).
"""
import os
import pickle
import struct
import tarfile
import warnings
import zipfile
from typing import Any, BinaryIO, Iterator, List, Optional, Tuple, Union

import torch

from . import restricted_unpickler
from .plain_state import restore_message_hub

__all__ = [
    'CheckpointLoadError', 'UnsafeCheckpointError',
    'IncompleteCheckpointError', 'NonFiniteCheckpointError',
    'safe_torch_load', 'nonfinite_tensors', 'TRUST_ENV', 'trust_checkpoints'
]

#: Environment variable that opts in to full (code-running) unpickling.
TRUST_ENV = 'MME_TRUST_CHECKPOINTS'
#: Top-level checkpoint keys that hold logs, not weights.
_LOG_KEYS = ('message_hub', 'meta')


class CheckpointLoadError(ValueError):
    """A checkpoint cannot be used; the message names the file and why."""


class UnsafeCheckpointError(CheckpointLoadError, pickle.UnpicklingError):
    """A checkpoint names objects outside the allow-list."""


class IncompleteCheckpointError(CheckpointLoadError):
    """A checkpoint file is truncated or corrupt."""


class NonFiniteCheckpointError(CheckpointLoadError):
    """A checkpoint holds weights that are NaN or infinite."""


def trust_checkpoints() -> None:
    """Opt in to full unpickling for this process (``--trust-checkpoint``)."""
    os.environ[TRUST_ENV] = '1'


def _walk(obj: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f'{prefix}.{k}' if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk(v, f'{prefix}[{i}]')
    else:
        yield prefix, obj


def nonfinite_tensors(obj: Any, skip: Tuple[str, ...] = _LOG_KEYS
                      ) -> List[str]:
    """Names of the floating tensors in ``obj`` that hold NaN or Inf.

    Args:
        obj (Any): A checkpoint or state dict (nested dicts, lists, tensors).
        skip (tuple[str]): Top-level keys not to look into (logs).

    Returns:
        list[str]: Dotted paths, e.g. ``state_dict.backbone.cls_token``.
    """
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k not in skip}
    named = [(n, t) for n, t in _walk(obj)
             if isinstance(t, torch.Tensor) and (t.is_floating_point()
                                                 or t.is_complex())]
    if not named:
        return []
    # One reduction per tensor, one host sync per device.
    bad = []
    for device in {t.device for _, t in named}:
        group = [(n, t) for n, t in named if t.device == device]
        ok = torch.stack([torch.isfinite(t).all() for _, t in group]).cpu()
        bad += [n for (n, _), good in zip(group, ok.tolist()) if not good]
    return sorted(bad, key=[n for n, _ in named].index)


def _size(path: Any) -> str:
    try:
        return f'{os.path.getsize(path)} bytes'
    except (OSError, TypeError):
        return 'in memory'


def _incomplete(path: Any, name: str,
                why: str) -> IncompleteCheckpointError:
    return IncompleteCheckpointError(
        f'{name}: incomplete or corrupt checkpoint ({_size(path)}; {why}). '
        'The file was probably cut off (an interrupted copy or download, a '
        'full disk): copy it again, or resume from an older checkpoint.')


def _looks_truncated(path: Any) -> bool:
    """A zip-format checkpoint whose central directory is missing."""
    try:
        if isinstance(path, (str, os.PathLike)):
            with open(path, 'rb') as f:
                head = f.read(4)
            return head == b'PK\x03\x04' and not zipfile.is_zipfile(path)
    except OSError:
        return False
    return False


def _container_refusal(path: Any) -> Optional[str]:
    """Why ``torch.load`` would hand this file to code other than the
    unpickler, or None.

    ``torch.load`` picks the container format before any unpickler runs: a
    zip holding ``constants.pkl`` goes to ``torch.jit.load``, whose
    TorchScript ``__setstate__`` methods run during the load, and a legacy
    tar file is extracted with ``tarfile`` without a filter, so a hard link
    named ``storages`` changes the mode and owner of any file it points to.
    Both are refused; the zip format of ``torch.save`` (torch >= 1.6) and
    the legacy stream format go to the restricted unpickler.
    """
    own = isinstance(path, (str, os.PathLike))
    f = open(path, 'rb') if own else path
    start = f.tell()
    try:
        if f.read(4) == b'PK\x03\x04':
            f.seek(start)
            names = set()
            try:
                with zipfile.ZipFile(f) as zf:
                    names = {n.split('/', 1)[-1] for n in zf.namelist()}
            except (zipfile.BadZipFile, OSError):
                pass  # torch's reader reports it as incomplete
            f.seek(start)
            try:
                reader = torch._C.PyTorchFileReader(f)
                names |= set(reader.get_all_records())
            except (RuntimeError, AttributeError, TypeError):
                pass
            if 'constants.pkl' in names or any(
                    n.startswith('code/') for n in names):
                return ('a TorchScript archive (torch.jit.save): '
                        'torch.load would run its code through torch.jit.load')
            return None
        f.seek(start)
        if tarfile.is_tarfile(f):
            return ('the legacy tar format (torch < 0.4): extracting it can '
                    'change the permissions of other files through links')
        return None
    finally:
        if own:
            f.close()
        else:
            f.seek(start)


def _load(f: Union[str, BinaryIO], map_location: Any, trusted: bool) -> Any:
    if trusted:
        return torch.load(f, map_location=map_location, weights_only=False)
    return torch.load(f, map_location=map_location, weights_only=False,
                      pickle_module=restricted_unpickler)


def safe_torch_load(path: Union[str, os.PathLike, BinaryIO],
                    map_location: Any = 'cpu',
                    check_finite: bool = True,
                    name: Optional[str] = None) -> Any:
    """``torch.load`` that cannot run code, and refuses bad checkpoints.

    Args:
        path (str | PathLike | file): Local checkpoint path, or an open
            binary file (remote checkpoints fetched by mmengine).
        map_location (Any): As :func:`torch.load`. Defaults to ``'cpu'``.
        check_finite (bool): Refuse non-finite weight / optimizer tensors.
            Defaults to True.
        name (str, optional): What to call the file in messages (for an
            open file: its URL). Defaults to ``path``.

    Returns:
        Any: The loaded object; mmengine message-hub buffers saved as plain
        data by this project are turned back into ``HistoryBuffer``.

    Raises:
        UnsafeCheckpointError: The file names a global outside the
            allow-list (named in the message, with the opt-in).
        IncompleteCheckpointError: The file is truncated or corrupt.
        NonFiniteCheckpointError: Weights hold NaN / Inf (named).
    """
    trusted = os.environ.get(TRUST_ENV) == '1'
    name = str(path) if name is None else name
    if trusted:
        warnings.warn(f'{TRUST_ENV}=1: loading {name} with full unpickling; '
                      'a malicious file can run code.')
    if _looks_truncated(path):
        raise _incomplete(path, name, 'no zip central directory')
    refusal = None if trusted else _container_refusal(path)
    if refusal:
        raise UnsafeCheckpointError(
            f'{name}: refused to load: it is {refusal}. A checkpoint for this '
            'project is a torch.save file. If you trust the file, pass '
            f'--trust-checkpoint to the tool, or set {TRUST_ENV}=1 for stock '
            'mmengine entry points.')
    try:
        obj = _load(path, map_location, trusted)
    except restricted_unpickler.ForbiddenGlobalError as e:
        raise UnsafeCheckpointError(
            f'{name}: refused to load: its pickle asks for {e.what}, which '
            'checkpoints of this project, mmengine and the official MME/'
            'VideoMAE releases do not need; only tensors and plain data are '
            'loaded, since unpickling anything else could run code. If '
            'you trust the file, pass --trust-checkpoint to the tool, or set '
            f'{TRUST_ENV}=1 for stock mmengine entry points.') from None
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, TypeError,
            AttributeError, KeyError, IndexError, ValueError, struct.error,
            OverflowError, AssertionError) as e:
        # A cut-off pickle, or records that do not fit together.
        raise _incomplete(path, name, f'{type(e).__name__}: {e}') from None
    except RuntimeError as e:
        msg = str(e)
        if any(s in msg for s in ('PytorchStreamReader', 'zip archive',
                                  'magic number', 'corrupt', 'truncated')):
            raise _incomplete(path, name, msg.splitlines()[0][:200]) from None
        raise
    obj = restore_message_hub(obj)
    if check_finite:
        bad = nonfinite_tensors(obj)
        if bad:
            shown = ', '.join(bad[:10]) + (
                f' and {len(bad) - 10} more' if len(bad) > 10 else '')
            raise NonFiniteCheckpointError(
                f'{name}: refused to load: {len(bad)} tensor(s) hold NaN or '
                f'Inf: {shown}. The run that wrote it diverged, or the file '
                'was damaged: use an earlier checkpoint of that run.')
    return obj

