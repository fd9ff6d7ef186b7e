"""Crafted checkpoints never run code, from any entry point.

The pickles here are assembled opcode by opcode (:class:`P`), so each test
states exactly what an attacker's file contains. Families:

* globals that run code directly (``os.system``, ``eval``, ``subprocess``,
  nested ``torch.load`` through ``torch.storage._load_from_bytes``, ...);
* attribute chains through ``getattr`` (the reported bypass:
  ``getattr(getattr, '__self__')`` -> ``builtins`` -> ``eval``);
* rebuild functions with attacker-chosen callables (torch's
  ``_rebuild_from_type_v2``, backward hooks, parameter state, numpy's
  ``_reconstruct`` of another type);
* nested reductions: calling what an allowed call returned, a class the
  file may only name, or an allowed builder with a callable argument;
* opcodes that call or mutate: ``INST``, ``OBJ``, ``NEWOBJ``,
  ``NEWOBJ_EX``, ``EXT1``, ``BUILD`` on other types, ``SETITEMS`` /
  ``APPENDS`` on objects that are not dicts / lists, mmengine's
  ``HistoryBuffer`` statistics with a foreign function;
* every container: the zip format's ``data.pkl``, the legacy stream
  format, the legacy tar format, and a bare pickle.

Every payload would create a marker file; the tests assert that it never
appears and that the error names the file and the offending global.
"""
import io
import os
import pickle
import struct
import tarfile
import zipfile
from typing import Callable, Dict, List, Tuple

import pytest
import torch

from mme_plugin.engine.restricted_unpickler import ALLOWED_GLOBALS
from mme_plugin.engine.safe_load import (TRUST_ENV, UnsafeCheckpointError,
                                         safe_torch_load)

from .conftest import REPO


class P:
    """A protocol-2 pickle written opcode by opcode."""

    def __init__(self) -> None:
        self.b = b'\x80\x02'

    def g(self, module: str, name: str) -> 'P':
        self.b += b'c' + module.encode() + b'\n' + name.encode() + b'\n'
        return self

    def s(self, text: str) -> 'P':
        data = text.encode()
        self.b += b'X' + struct.pack('<I', len(data)) + data
        return self

    def i(self, value: int) -> 'P':
        self.b += b'J' + struct.pack('<i', value)
        return self

    def raw(self, ops: bytes) -> 'P':
        self.b += ops
        return self

    def mark(self) -> 'P':
        return self.raw(b'(')

    def tuple(self) -> 'P':
        return self.raw(b't')

    def reduce(self) -> 'P':
        return self.raw(b'R')

    def call(self, module: str, name: str, *args: Callable[['P'],
                                                            'P']) -> 'P':
        """``module.name(*args)``; each arg writes itself onto the stack."""
        self.g(module, name).mark()
        for a in args:
            a(self)
        return self.tuple().reduce()

    def done(self, wrap_in_dict: bool = True) -> bytes:
        if wrap_in_dict:  # {'state_dict': <payload>}
            return b'\x80\x02}X\x0a\x00\x00\x00state_dict' + self.b[2:] + \
                b's.'
        return self.b + b'.'


def lit(x) -> Callable[[P], P]:
    """A literal argument (str or int)."""
    return (lambda p: p.s(x)) if isinstance(x, str) else (lambda p: p.i(x))


def sub(build: Callable[[P], P]) -> Callable[[P], P]:
    """A nested expression argument."""
    return build


def _marker_cmd(marker: str) -> str:
    return f'touch {marker}'


def _marker_py(marker: str) -> str:
    return f"open({marker!r}, 'w').close()"


def _builtins_chain(p: P) -> P:
    """``getattr(getattr, '__self__')``: the builtins module."""
    return p.call('builtins', 'getattr', lambda q: q.g('builtins',
                                                       'getattr'),
                  lit('__self__'))


def _eval_via_getattr(p: P) -> P:
    return p.call('builtins', 'getattr', sub(_builtins_chain), lit('eval'))


GADGETS: Dict[str, Callable[[str], bytes]] = {
    # -- globals that run code when called --------------------------------
    'os.system': lambda m: P().call('os', 'system', lit(_marker_cmd(m)))
    .done(),
    'posix.system': lambda m: P().call('posix', 'system',
                                       lit(_marker_cmd(m))).done(),
    'builtins.eval': lambda m: P().call('builtins', 'eval',
                                        lit(_marker_py(m))).done(),
    '__builtin__.exec': lambda m: P().call('__builtin__', 'exec',
                                           lit(_marker_py(m))).done(),
    'subprocess.check_call': lambda m: P().g('subprocess', 'check_call')
    .mark().mark().s('touch').s(m).raw(b'l').tuple().reduce().done(),
    'nested torch.load (_load_from_bytes)': lambda m: P().call(
        'torch.storage', '_load_from_bytes',
        lambda q: q.raw(b'C' + bytes([1]) + b'x')).done(),
    'numpy.load': lambda m: P().call('numpy', 'load', lit(m)).done(),
    'functools.partial': lambda m: P().call(
        'functools', 'partial', lambda q: q.g('os', 'system'),
        lit(_marker_cmd(m))).done(),
    'operator.methodcaller': lambda m: P().call(
        'operator', 'methodcaller', lit('system'),
        lit(_marker_cmd(m))).done(),
    'copyreg._reconstructor': lambda m: P().call(
        'copyreg', '_reconstructor', lambda q: q.g('os', 'system'),
        lambda q: q.g('builtins', 'object'), lit(_marker_cmd(m))).done(),
    # -- attribute chains ---------------------------------------------------
    'getattr of HistoryBuffer.__init__.__globals__': lambda m: P().call(
        'builtins', 'getattr',
        lambda q: q.g('mmengine.logging.history_buffer', 'HistoryBuffer'),
        lit('__init__')).done(),
    'getattr of a tensor method': lambda m: P().call(
        'builtins', 'getattr', lambda q: q.call('torch', 'Size',
                                                lambda r: r.mark().tuple()),
        lit('__class__')).done(),
    # -- rebuild functions with attacker-chosen callables -----------------
    'the reported bypass: _rebuild_from_type_v2(eval via getattr)':
    lambda m: P().call('torch._tensor', '_rebuild_from_type_v2',
                       sub(_eval_via_getattr),
                       lambda q: q.g('mmengine.logging.history_buffer',
                                     'HistoryBuffer'),
                       lambda q: q.mark().s(_marker_py(m)).tuple(),
                       lambda q: q.raw(b'}')).done(),
    '_rebuild_from_type_v2(os.system)': lambda m: P().call(
        'torch._tensor', '_rebuild_from_type_v2',
        lambda q: q.g('os', 'system'),
        lambda q: q.g('torch._tensor', 'Tensor'),
        lambda q: q.mark().s(_marker_cmd(m)).tuple(),
        lambda q: q.raw(b'}')).done(),
    '_rebuild_from_type_v2(a marker class)': lambda m: P().call(
        'torch._tensor', '_rebuild_from_type_v2',
        lambda q: q.g('argparse', 'Namespace'),
        lambda q: q.g('torch._tensor', 'Tensor'),
        lambda q: q.mark().tuple(), lambda q: q.raw(b'}')).done(),
    'torch._utils._rebuild_wrapper_subclass': lambda m: P().call(
        'torch._utils', '_rebuild_wrapper_subclass',
        lambda q: q.g('os', 'system')).done(),
    'torch._utils._rebuild_device_tensor_from_numpy': lambda m: P().call(
        'torch._utils', '_rebuild_device_tensor_from_numpy',
        lit('x')).done(),
    'torch.serialization._get_layout': lambda m: P().call(
        'torch.serialization', '_get_layout', lit('torch.strided')).done(),
    'backward hooks holding os.system': lambda m: P().call(
        'torch._utils', '_rebuild_parameter',
        lambda q: q.call('torch', 'Size', lambda r: r.mark().tuple()),
        lambda q: q.raw(b'\x88'),
        lambda q: q.raw(b'}').s('h').g('os', 'system').raw(b's')).done(),
    'parameter with Python state': lambda m: P().call(
        'torch._utils', '_rebuild_parameter_with_state',
        lambda q: q.raw(b'N'), lambda q: q.raw(b'\x88'),
        lambda q: q.raw(b'}'),
        lambda q: q.raw(b'}').s('__class__').g('os', 'system')
        .raw(b's')).done(),
    'numpy _reconstruct of another type': lambda m: P().call(
        'numpy.core.multiarray', '_reconstruct',
        lambda q: q.g('argparse', 'Namespace'),
        lambda q: q.mark().i(0).tuple(), lit('b')).done(),
    'numpy object dtype': lambda m: P().call(
        'numpy', 'dtype', lit('O'), lambda q: q.raw(b'\x89'),
        lambda q: q.raw(b'\x88')).done(),
    # -- nested reductions ----------------------------------------------
    'calling what an allowed call returned': lambda m: P().call(
        'collections', 'OrderedDict').mark().s(_marker_cmd(m)).tuple()
    .reduce().done(),
    'calling a class the file may only name': lambda m: P().g(
        'argparse', 'Namespace').mark().tuple().reduce().done(),
    'calling a torch dtype': lambda m: P().g('torch', 'float32').mark()
    .tuple().reduce().done(),
    'an allowed builder with a callable argument': lambda m: P().call(
        'collections', 'OrderedDict',
        lambda q: q.raw(b']').mark().g('os', 'system').s('x').raw(b't')
        .raw(b'a')).done(),
    # -- opcodes that call or mutate ----------------------------------------
    'INST os.system': lambda m: P().mark().s(_marker_cmd(m)).raw(
        b'ios\nsystem\n').done(),
    'OBJ with an allowed builder': lambda m: P().mark().g(
        'collections', 'OrderedDict').raw(b'o').done(),
    'NEWOBJ of OrderedDict': lambda m: P().g('collections', 'OrderedDict')
    .mark().tuple().raw(b'\x81').done(),
    'NEWOBJ with arguments': lambda m: P().g('argparse', 'Namespace')
    .mark().s('a').tuple().raw(b'\x81').done(),
    'NEWOBJ_EX': lambda m: P().g('argparse', 'Namespace').mark().tuple()
    .raw(b'}\x92').done(),
    'EXT1 (the extension registry)': lambda m: P().raw(b'\x82\x01')
    .done(),
    'BUILD on a tensor': lambda m: P().call(
        'torch', 'Size', lambda q: q.mark().tuple()).raw(b'}').raw(b'b')
    .done(),
    'HistoryBuffer statistics with a foreign function': lambda m: P().g(
        'mmengine.logging.history_buffer', 'HistoryBuffer').mark().tuple()
    .raw(b'\x81}').s('statistics_methods').raw(b'}').s('min')
    .call('builtins', 'getattr', lambda q: q.g('argparse', 'Namespace'),
          lit('__init__')).raw(b'ss').raw(b'b').done(),
    'HistoryBuffer statistics as a string': lambda m: P().g(
        'mmengine.logging.history_buffer', 'HistoryBuffer').mark().tuple()
    .raw(b'\x81}').s('statistics_methods').raw(b'}').s('min').s('max')
    .raw(b'ss').raw(b'b').done(),
    'SETITEMS on a tensor': lambda m: P().call(
        'torch', 'Size', lambda q: q.mark().tuple()).mark().i(0).i(1)
    .raw(b'u').done(),
    'APPENDS on a Namespace': lambda m: P().g('argparse', 'Namespace')
    .mark().tuple().raw(b'\x81').mark().i(1).raw(b'e').done(),
}


def _call_result(build: Callable[[P], P], marker: str) -> bytes:
    """``build()(payload)``: call what an attribute chain returned."""
    return build(P()).mark().s(_marker_py(marker)).tuple().reduce().done()


GADGETS['getattr chain to eval, called'] = lambda m: _call_result(
    _eval_via_getattr, m)


def _zip_checkpoint(pkl: bytes) -> bytes:
    """A torch zip checkpoint whose ``data.pkl`` is ``pkl``."""
    buf = io.BytesIO()
    torch.save({'ok': torch.zeros(2)}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = pkl if info.filename.endswith('/data.pkl') else \
                src.read(info)
            dst.writestr(info.filename, data)
    return out.getvalue()


def _legacy_checkpoint(pkl: bytes) -> bytes:
    """torch's legacy stream format: magic, version, sys info, the pickle,
    storage keys."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION
    head = b''.join(pickle.dumps(x, protocol=2) for x in (
        MAGIC_NUMBER, PROTOCOL_VERSION, {'protocol_version': 1001,
                                         'little_endian': True,
                                         'type_sizes': {}}))
    return head + pkl + pickle.dumps([], protocol=2)


def _tar_checkpoint(pkl: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as t:
        for name, data in (('storages', pkl), ('tensors', pkl),
                           ('pickle', pkl)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


FORMATS = {'zip': _zip_checkpoint, 'legacy': _legacy_checkpoint,
           'tar': _tar_checkpoint, 'bare pickle': lambda pkl: pkl}


@pytest.fixture(autouse=True)
def _untrusted(monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)


def _write(tmp_path, gadget: str, fmt: str):
    marker = tmp_path / 'PWNED'
    path = tmp_path / 'crafted.pth'
    path.write_bytes(FORMATS[fmt](GADGETS[gadget](str(marker))))
    return path, marker


@pytest.mark.parametrize('fmt', sorted(FORMATS))
@pytest.mark.parametrize('gadget', sorted(GADGETS))
def test_no_gadget_runs_code_in_any_format(gadget, fmt, tmp_path):
    path, marker = _write(tmp_path, gadget, fmt)
    with pytest.raises(Exception) as info:
        safe_torch_load(str(path))
    assert not marker.exists(), f'{gadget} ({fmt}) ran code'
    msg = str(info.value)
    assert str(path) in msg, msg
    assert isinstance(info.value, ValueError), \
        f'{gadget} ({fmt}): {type(info.value).__name__}: {msg}'


@pytest.mark.parametrize('gadget', sorted(GADGETS))
def test_the_error_names_the_offending_global(gadget, tmp_path):
    path, marker = _write(tmp_path, gadget, 'zip')
    with pytest.raises(UnsafeCheckpointError) as info:
        safe_torch_load(str(path))
    msg = str(info.value)
    assert 'refused to load' in msg and '--trust-checkpoint' in msg
    first = gadget.split(' ')[0]
    if first.count('.') >= 1 and first.replace('.', '').replace(
            '_', '').isalnum():
        module, _, name = first.rpartition('.')
        assert name in msg, msg
    assert not marker.exists()


def test_the_reported_bypass_ran_code_with_the_old_allow_list(tmp_path):
    """The test can fail: the same file does run code with torch's
    restricted unpickler once ``getattr`` is allowed (the old loader)."""
    path, marker = _write(
        tmp_path, 'the reported bypass: _rebuild_from_type_v2(eval via '
        'getattr)', 'zip')
    from mmengine.logging import HistoryBuffer
    with torch.serialization.safe_globals([getattr, HistoryBuffer]):
        try:
            torch.load(str(path), weights_only=True)
        except Exception:  # noqa: BLE001 - it fails after the code ran
            pass
    assert marker.exists()


def test_no_allowed_global_is_a_callable_of_python_or_the_os():
    """The allow-list names only builders of data and inert markers."""
    from mme_plugin.engine import restricted_unpickler as ru
    for (module, name), value in ru._BUILDERS.items():
        if callable(value):
            assert value.__module__ == ru.__name__, (module, name)
            assert value.__name__.startswith('_build'), (module, name)
    assert 'builtins.getattr' in ALLOWED_GLOBALS  # as a builder of names


# -- every entry point ----------------------------------------------------

ENTRY_GADGETS = ('the reported bypass: _rebuild_from_type_v2(eval via '
                 'getattr)', 'os.system', 'INST os.system')


def _tool(relpath: str):
    """A tool script (``tools/`` is not a package), imported once."""
    from tests.conftest import load_tool
    return load_tool(relpath)


def _entry_points(synthetic_root: str, tmp_path,
                  monkeypatch) -> Dict[str, Callable]:
    from tests.conftest import FAST_LOADER, data_options

    def train(extra: List[str]):
        _tool('tools/train.py').main([
            'configs/mme/finetune_tiny_synthetic.py', '--cfg-options',
            *FAST_LOADER, *data_options(synthetic_root),
            'train_cfg.max_epochs=1', *extra])

    def test_tool(path):
        _tool('tools/test.py').main([
            'configs/mme/finetune_tiny_synthetic.py', str(path),
            '--work-dir', str(tmp_path / 'test'), '--cfg-options',
            *FAST_LOADER, *data_options(synthetic_root)])

    def resume(path):
        work = tmp_path / 'resume'
        work.mkdir(exist_ok=True)
        (work / 'epoch_1.pth').write_bytes(path.read_bytes())
        train(['--work-dir', str(work), '--resume'])

    def pretrained(path):
        from mmengine.config import Config
        from mmengine.registry import MODELS
        cfg = Config.fromfile('configs/mme/finetune_tiny_synthetic.py')
        cfg.model.backbone.init_cfg = dict(type='Pretrained',
                                           checkpoint=str(path))
        MODELS.build(cfg.model).init_weights()

    def convert(module):
        def run(path):
            out = tmp_path / f'{module}.pth'
            monkeypatch.setattr('sys.argv', [module, str(path), str(out)])
            try:
                _tool(f'tools/convert/{module}.py').main()
            finally:
                assert not out.exists()
        return run

    def mmengine_loader(path):
        from mmengine.runner import CheckpointLoader
        CheckpointLoader.load_checkpoint(str(path), map_location='cpu')

    return {
        'tools/train.py load_from': lambda p: train(
            [f'load_from={p}', '--work-dir', str(tmp_path / 'load_from')]),
        'tools/train.py --resume': resume,
        'tools/test.py': test_tool,
        'Pretrained init': pretrained,
        'mme_to_recognizer.py': convert('mme_to_recognizer'),
        'official_to_mmaction.py': convert('official_to_mmaction'),
        'mmengine CheckpointLoader': mmengine_loader,
    }


ENTRY_NAMES = ('tools/train.py load_from', 'tools/train.py --resume',
               'tools/test.py', 'Pretrained init', 'mme_to_recognizer.py',
               'official_to_mmaction.py', 'mmengine CheckpointLoader')


def entry_cases(entry: str) -> List[Tuple[str, str]]:
    """(gadget, format) pairs an entry point is tried with: every gadget
    of :data:`ENTRY_GADGETS` once, in a zip checkpoint or a legacy file,
    the format alternating by gadget and by entry point, so that the tools
    together meet every gadget in both formats (every gadget meets every
    loader in every format in the tests above) without each tool running
    six times. ``--resume`` gets zip files only: resume reads only complete
    zip checkpoints of its work dir (a legacy file there is skipped, never
    unpickled, and the run starts afresh, a whole epoch)."""
    if entry.endswith('--resume'):
        return [(g, 'zip') for g in ENTRY_GADGETS]
    j = [e for e in ENTRY_NAMES if not e.endswith('--resume')].index(entry)
    return [(g, ('zip', 'legacy')[(j + k) % 2])
            for k, g in enumerate(ENTRY_GADGETS)]


def test_entry_cases_cover_every_gadget_in_both_formats_through_tools():
    tools = [e for e in ENTRY_NAMES if e.startswith('tools/')]
    reached = {c for e in tools for c in entry_cases(e)}
    assert reached == {(g, f) for g in ENTRY_GADGETS
                       for f in ('zip', 'legacy')}
    for e in ENTRY_NAMES:
        assert [g for g, _ in entry_cases(e)] == list(ENTRY_GADGETS), e


@pytest.mark.parametrize('entry', ENTRY_NAMES)
def test_every_entry_point_refuses_every_gadget_family(entry,
                                                       synthetic_root,
                                                       tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.chdir(REPO)
    entries = _entry_points(synthetic_root, tmp_path, monkeypatch)
    for gadget, fmt in entry_cases(entry):
        path, marker = _write(tmp_path, gadget, fmt)
        with pytest.raises((SystemExit, UnsafeCheckpointError)) as info:
            entries[entry](path)
        assert not marker.exists(), (entry, gadget, fmt)
        msg = str(info.value) + capsys.readouterr().err
        # --resume loads the copy it finds in the work dir.
        named = str(tmp_path / 'resume' / 'epoch_1.pth') if \
            entry.endswith('--resume') else str(path)
        assert 'refused to load' in msg and named in msg, \
            (entry, gadget, fmt, msg[-500:])
        assert info.value.code != 0 if isinstance(
            info.value, SystemExit) else True
        os.remove(path)


def test_remote_schemes_load_through_the_safe_loader(tmp_path):
    """URL schemes (torch's downloader, then the safe loader: torch's own
    ``load_state_dict_from_url`` unpickles with ``weights_only=False``) and
    the storage-backend schemes (``torch.load`` inside mmengine's module)."""
    import mmengine.runner.checkpoint as ckpt_mod

    from mme_plugin.compat import _load_url
    path, marker = _write(tmp_path, 'os.system', 'zip')
    with pytest.raises(UnsafeCheckpointError, match='os.system'):
        _load_url(path.as_uri(), model_dir=str(tmp_path / 'hub'))
    with pytest.raises(UnsafeCheckpointError, match='os.system'):
        ckpt_mod.torch.load(io.BytesIO(path.read_bytes()))
    assert not marker.exists()
    assert ckpt_mod.load_url is _load_url
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, good)
    assert torch.equal(_load_url(good.as_uri(), model_dir=str(
        tmp_path / 'hub2'))['state_dict']['w'], torch.ones(2))


# -- containers that torch.load hands to code other than the unpickler ----

class _Script(torch.nn.Module):
    """TorchScript runs ``__setstate__`` while ``torch.jit.load`` loads."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    @torch.jit.export
    def __getstate__(self):
        return (self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.marker = state[0]
        self.training = state[1]
        # writes the marker file through a shared mapping: file I/O at load
        written = torch.from_file(self.marker, shared=True, size=1,
                                  dtype=torch.uint8)
        written.copy_(torch.ones(1, dtype=torch.uint8))
        print(written)  # used, so TorchScript keeps the write

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _torchscript_file(tmp_path):
    """A TorchScript archive whose load writes byte 1 into ``victim``."""
    victim = tmp_path / 'victim.bin'
    path = tmp_path / 'script.pth'
    torch.jit.save(torch.jit.script(_Script(str(victim))), str(path))
    victim.write_bytes(b'\x00')
    return path, victim


def test_a_torchscript_archive_is_refused_and_runs_nothing(tmp_path):
    path, victim = _torchscript_file(tmp_path)
    with pytest.raises(UnsafeCheckpointError, match='TorchScript') as info:
        safe_torch_load(str(path))
    assert str(path) in str(info.value)
    with pytest.raises(UnsafeCheckpointError, match='TorchScript'):
        safe_torch_load(io.BytesIO(path.read_bytes()))
    assert victim.read_bytes() == b'\x00'
    # control: plain torch.load dispatches it to torch.jit.load, which
    # runs the archive's code
    torch.load(str(path), weights_only=False)
    assert victim.read_bytes() == b'\x01'


def _tar_with_link(tmp_path, victim):
    path = tmp_path / 'linked.tar'
    with tarfile.open(path, 'w', format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo('storages')
        info.type = tarfile.LNKTYPE
        info.linkname = str(victim)
        info.mode = 0o777
        t.addfile(info)
    return path


def test_a_legacy_tar_file_is_refused_before_extraction(tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_text('secret')
    victim.chmod(0o600)
    path = _tar_with_link(tmp_path, victim)
    with pytest.raises(UnsafeCheckpointError, match='legacy tar') as info:
        safe_torch_load(str(path))
    assert str(path) in str(info.value)
    assert victim.stat().st_mode & 0o777 == 0o600
    # control: plain torch.load extracts the link and chmods the victim
    try:
        torch.load(str(path), weights_only=False)
    except Exception:  # noqa: BLE001 - it fails after extracting
        pass
    assert victim.stat().st_mode & 0o777 == 0o777
