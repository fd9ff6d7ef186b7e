"""An unpickler that can only build tensors and plain data, by construction.

Why not ``torch.load(weights_only=True)`` with extra allowed globals? Because
an allow-list of *callables* is only as strong as their combinations: the
previous loader allowed ``builtins.getattr`` (mmengine's ``HistoryBuffer``
pickles its statistics functions as ``getattr(HistoryBuffer, 'min')``), and
torch itself allows ``torch._tensor._rebuild_from_type_v2(func, ...)``, which
calls its first argument. ``getattr(getattr, '__self__')`` is the ``builtins``
module, ``getattr`` of that is ``eval``, and the rebuild function called it:
a crafted ``.pth`` ran code from ``tools/test.py``.

This module removes the whole class of such chains instead of the instance:

* **The only callables the pickle machine can reach are this module's
  validating builders.** A global named in the file resolves (:meth:`RestrictedUnpickler.find_class`) either to an
  inert :class:`Marker` (a class or constant the file may *name*, e.g.
  ``numpy.ndarray`` as an argument of ``_reconstruct``) or to one of this
  module's validating builders (``_build_*``), each of which checks the
  types and values of its arguments and then builds exactly one kind of
  object. An unknown global is refused with :class:`ForbiddenGlobalError`.
* **Every opcode that calls or mutates is overridden:** ``REDUCE`` calls
  only the builders; ``NEWOBJ`` instantiates only ``argparse.Namespace`` and
  mmengine's ``HistoryBuffer`` without arguments; ``BUILD`` sets state only
  on those, on numpy arrays and on numpy dtypes, after validating it;
  ``BUILD`` on an ``OrderedDict`` may only set torch's ``_metadata``;
  ``INST``/``OBJ``/``NEWOBJ_EX``/``EXT*`` (protocol-0/1 class calls and the
  extension registry) are refused; ``APPEND(S)``/``SETITEM(S)``/``ADDITEMS``
  only touch built-in lists, dicts and sets.
* **No builder returns anything callable** (tensors, storages' dtypes,
  numpy data, plain containers), so no output can become the function of a
  later ``REDUCE``. ``getattr`` is not offered at all: the file's
  ``getattr(HistoryBuffer, name)`` resolves to the name of a statistic,
  which :meth:`RestrictedUnpickler.load_build` maps back to mmengine's own
  method.

Tensor storages are read by torch's own loader (``persistent_load``), which
this unpickler is plugged into as ``pickle_module``; torch replaces
``*Storage`` globals by its inert ``StorageType`` before they reach us.

Sources: the pickle opcode semantics are those of CPython's ``pickle.py``
(documented in ``pickletools``); the shape of tensor, parameter and numpy
reductions is what ``torch.save`` and numpy's ``__reduce__`` write.
"""
import _compat_pickle
import argparse
import collections
import pickle
import re
from typing import Any, Dict, Tuple

import numpy as np
import torch

__all__ = ['ForbiddenGlobalError', 'Marker', 'RestrictedUnpickler',
           'ALLOWED_GLOBALS', 'load', 'loads']


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle names, calls or builds something outside the allow-list.

    Args:
        what (str): The offending global or operation (for the message).
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Marker:
    """An inert stand-in for a class or constant a file may only *name*.

    Not callable, no attributes of interest: a marker can only be passed to
    a builder that expects exactly it.

    Args:
        qualname (str): ``module.name`` of what it stands for.
    """

    __slots__ = ('qualname', )

    def __init__(self, qualname: str) -> None:
        self.qualname = qualname

    def __repr__(self) -> str:
        return f'Marker({self.qualname})'


_NDARRAY = Marker('numpy.ndarray')
_TENSOR = Marker('torch.Tensor')
_PARAMETER = Marker('torch.nn.Parameter')
#: HistoryBuffer statistics, named in files as getattr(HistoryBuffer, name).
_STATS = ('min', 'max', 'current', 'mean')
_NUMERIC_KINDS = 'biufc'
_DTYPE_STR = re.compile(r'^[<>|=]?[biufc?][0-9]{0,2}$')


def _fail(what: str) -> None:
    raise ForbiddenGlobalError(what)


def _is_int(x: Any) -> bool:
    return type(x) is int


def _int_tuple(x: Any) -> bool:
    return type(x) in (tuple, torch.Size) and all(map(_is_int, x))


def _is_storage(x: Any) -> bool:
    return isinstance(x, (torch.storage.TypedStorage, torch.UntypedStorage))


def _no_hooks(hooks: Any) -> None:
    if hooks is not None and (type(hooks) not in (dict,
                                                  collections.OrderedDict)
                              or len(hooks)):
        _fail('a tensor with backward hooks')


def _build_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any,
                     requires_grad: Any, hooks: Any,
                     metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` with its arguments checked."""
    if not (_is_storage(storage) and _is_int(offset) and _int_tuple(size)
            and _int_tuple(stride) and type(requires_grad) is bool):
        _fail('torch._utils._rebuild_tensor_v2 with unexpected arguments')
    _no_hooks(hooks)
    if metadata not in (None, {}):
        _fail('torch._utils._rebuild_tensor_v2 with tensor metadata')
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
                                           requires_grad,
                                           collections.OrderedDict())


def _build_tensor(storage: Any, offset: Any, size: Any,
                  stride: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor`` (older files) with checks."""
    return _build_tensor_v2(storage, offset, size, stride, False, None)


def _build_parameter(data: Any, requires_grad: Any,
                     hooks: Any) -> torch.nn.Parameter:
    """``torch._utils._rebuild_parameter`` with its arguments checked."""
    if type(data) is not torch.Tensor or type(requires_grad) is not bool:
        _fail('torch._utils._rebuild_parameter with unexpected arguments')
    _no_hooks(hooks)
    return torch.nn.Parameter(data, requires_grad)


def _build_parameter_with_state(data: Any, requires_grad: Any, hooks: Any,
                                state: Any) -> torch.nn.Parameter:
    """``_rebuild_parameter_with_state``: only without Python state."""
    if state not in (None, {}, (None, None), (None, {}), ({}, None)):
        _fail('a torch.nn.Parameter with Python attributes')
    return _build_parameter(data, requires_grad, hooks)


#: The builders a file may call with REDUCE, and nothing else.
_TENSOR_BUILDERS = (_build_tensor_v2, _build_tensor, _build_parameter,
                    _build_parameter_with_state)


def _build_from_type(func: Any, new_type: Any, args: Any,
                     state: Any) -> torch.Tensor:
    """``torch._tensor._rebuild_from_type_v2`` restricted to plain tensors
    and parameters built by the tensor builders above, without state."""
    if not any(func is b for b in _TENSOR_BUILDERS) or type(args) is not \
            tuple or new_type not in (_TENSOR, _PARAMETER):
        _fail('torch._tensor._rebuild_from_type_v2 with a callable or type '
              'other than the tensor rebuild functions')
    if state not in (None, {}):
        _fail('a tensor with Python attributes')
    out = func(*args)
    if new_type is _PARAMETER and type(out) is not torch.nn.Parameter:
        out = torch.nn.Parameter(out, out.requires_grad)
    return out


def _build_size(dims: Any = ()) -> torch.Size:
    if not _int_tuple(dims):
        _fail('torch.Size with non-integer dimensions')
    return torch.Size(dims)


def _build_device(kind: Any, index: Any = None) -> torch.device:
    if type(kind) is not str or not re.fullmatch(r'[a-z_]+(:[0-9]+)?', kind)\
            or (index is not None and not _is_int(index)):
        _fail('torch.device with unexpected arguments')
    return torch.device(kind) if index is None else torch.device(kind, index)


def _build_ordered_dict(items: Any = ()) -> collections.OrderedDict:
    if type(items) not in (list, tuple) or not all(
            type(i) in (list, tuple) and len(i) == 2 for i in items):
        _fail('collections.OrderedDict with unexpected arguments')
    return collections.OrderedDict(items)


def _build_set(items: Any = ()) -> set:
    if type(items) not in (list, tuple):
        _fail('builtins.set with unexpected arguments')
    return set(items)


def _build_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_build_set(items))


def _build_complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if type(real) not in (int, float) or type(imag) not in (int, float):
        _fail('builtins.complex with unexpected arguments')
    return complex(real, imag)


def _build_bytes(text: Any, encoding: Any = 'latin1') -> bytes:
    """``_codecs.encode(str, 'latin1')``: how protocol 2 stores bytes."""
    if type(text) is not str or encoding not in ('latin1', 'latin-1'):
        _fail('_codecs.encode with unexpected arguments')
    return text.encode('latin1')


def _numeric_dtype(spec: Any) -> np.dtype:
    if type(spec) is bytes:
        spec = spec.decode('latin1')
    if type(spec) is not str or not _DTYPE_STR.match(spec):
        _fail(f'numpy dtype {spec!r} (only numeric dtypes are allowed)')
    dtype = np.dtype(spec)
    if dtype.kind not in _NUMERIC_KINDS:
        _fail(f'numpy dtype {spec!r} (only numeric dtypes are allowed)')
    return dtype


def _build_dtype(spec: Any, align: Any = False, copy: Any = False
                 ) -> np.dtype:
    if type(align) is not bool or type(copy) is not bool:
        _fail('numpy.dtype with unexpected arguments')
    # Always a fresh object: BUILD then sets its byte order, and must never
    # touch numpy's cached dtype singletons.
    return np.dtype(_numeric_dtype(spec), align, True)


def _build_ndarray(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct``: an empty plain array, filled by BUILD."""
    if subtype is not _NDARRAY or not _int_tuple(shape):
        _fail('numpy.core.multiarray._reconstruct of a type other than '
              'numpy.ndarray')
    return np.ndarray(shape, _numeric_dtype(dtype))


def _build_scalar(dtype: Any, data: Any = None) -> np.generic:
    """numpy's ``scalar(dtype, bytes)``: a numeric numpy scalar."""
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMERIC_KINDS \
            or type(data) is not bytes or len(data) != dtype.itemsize:
        _fail('numpy.core.multiarray.scalar with unexpected arguments')
    return np.frombuffer(data, dtype=dtype)[0].copy()


class _StatName(str):
    """``getattr(HistoryBuffer, name)`` as written by mmengine: the name of
    a statistic, resolved to mmengine's own method in BUILD."""


def _build_statistic(owner: Any, name: Any) -> _StatName:
    if owner is not _HISTORY_BUFFER or name not in _STATS:
        _fail('builtins.getattr (allowed only as getattr(HistoryBuffer, '
              f'one of {_STATS}) as mmengine writes it)')
    return _StatName(name)


_HISTORY_BUFFER = Marker('mmengine.logging.history_buffer.HistoryBuffer')
_NAMESPACE = Marker('argparse.Namespace')

_BUILDERS: Dict[Tuple[str, str], Any] = {
    ('torch._utils', '_rebuild_tensor_v2'): _build_tensor_v2,
    ('torch._utils', '_rebuild_tensor'): _build_tensor,
    ('torch._utils', '_rebuild_parameter'): _build_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'):
    _build_parameter_with_state,
    ('torch._tensor', '_rebuild_from_type_v2'): _build_from_type,
    ('torch', 'Size'): _build_size,
    ('torch', 'device'): _build_device,
    ('torch._tensor', 'Tensor'): _TENSOR,
    ('torch', 'Tensor'): _TENSOR,
    ('torch.nn.parameter', 'Parameter'): _PARAMETER,
    ('collections', 'OrderedDict'): _build_ordered_dict,
    ('builtins', 'set'): _build_set,
    ('builtins', 'frozenset'): _build_frozenset,
    ('builtins', 'complex'): _build_complex,
    ('builtins', 'getattr'): _build_statistic,
    ('_codecs', 'encode'): _build_bytes,
    ('numpy', 'dtype'): _build_dtype,
    ('numpy', 'ndarray'): _NDARRAY,
    ('numpy.core.multiarray', '_reconstruct'): _build_ndarray,
    ('numpy._core.multiarray', '_reconstruct'): _build_ndarray,
    ('numpy.core.multiarray', 'scalar'): _build_scalar,
    ('numpy._core.multiarray', 'scalar'): _build_scalar,
    ('mmengine.logging.history_buffer', 'HistoryBuffer'): _HISTORY_BUFFER,
    ('argparse', 'Namespace'): _NAMESPACE,
}
# Protocol >= 4 names mmengine's statistics by qualified name.
for _n in _STATS:
    _BUILDERS[('mmengine.logging.history_buffer',
               f'HistoryBuffer.{_n}')] = _StatName(_n)
# torch dtypes (torch.float32 ...) are constants, not callables.
for _n in dir(torch):
    if isinstance(getattr(torch, _n, None), torch.dtype):
        _BUILDERS[('torch', _n)] = getattr(torch, _n)

#: ``module.name`` of every global a file may name (for docs and messages).
ALLOWED_GLOBALS = sorted(f'{m}.{n}' for m, n in _BUILDERS)

_CALLABLE = tuple(v for v in _BUILDERS.values() if callable(v)
                  and not isinstance(v, torch.dtype))
#: Classes NEWOBJ may instantiate (without arguments), as their markers.
_NEWOBJ = {_HISTORY_BUFFER: None, _NAMESPACE: argparse.Namespace}
_HB_KEYS = {'max_length', '_log_history', '_count_history',
            'statistics_methods'}


def _hb_class() -> type:
    from mmengine.logging.history_buffer import HistoryBuffer
    return HistoryBuffer


def _numeric_array(x: Any) -> bool:
    return type(x) is np.ndarray and x.dtype.kind in _NUMERIC_KINDS


class RestrictedUnpickler(pickle._Unpickler):
    """CPython's pure-Python unpickler with every calling opcode restricted.

    See the module docstring for the rules. Used through :func:`load` /
    :func:`loads`, or as ``pickle_module`` of ``torch.load`` via
    :mod:`mme_plugin.engine.safe_load`.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global to a builder or marker; refuse anything else."""
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _BUILDERS[(module, name)]
        except (KeyError, TypeError):
            raise ForbiddenGlobalError(f'{module}.{name}') from None

    def _call(self, func: Any, args: Any) -> Any:
        if not any(func is f for f in _CALLABLE) or type(args) is not tuple:
            _fail(f'a call of {func!r}')
        try:
            return func(*args)
        except TypeError:  # wrong number of arguments
            _fail(f'{func.__name__} with unexpected arguments')

    def load_reduce(self) -> None:
        args = self.stack.pop()
        self.stack[-1] = self._call(self.stack[-1], args)

    dispatch[pickle.REDUCE[0]] = load_reduce

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not any(cls is c for c in _NEWOBJ) or args != ():
            _fail(f'instantiating {cls!r}')
        self.append(_hb_class().__new__(_hb_class()) if cls is
                    _HISTORY_BUFFER else argparse.Namespace())

    dispatch[pickle.NEWOBJ[0]] = load_newobj

    def _refuse(self) -> None:
        _fail('a protocol-0/1 class call, NEWOBJ_EX or the extension '
              'registry')

    for _op in (pickle.INST, pickle.OBJ, pickle.NEWOBJ_EX, pickle.EXT1,
                pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = _refuse
    del _op

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is argparse.Namespace:
            if type(state) is not dict or not all(
                    type(k) is str for k in state):
                _fail('argparse.Namespace with non-string attributes')
            inst.__dict__.update(state)
        elif type(inst) is collections.OrderedDict:
            # torch's state_dict() keeps module versions in ``_metadata``.
            if type(state) is not dict or set(state) - {'_metadata'} or \
                    type(state.get('_metadata', {})) not in (
                        dict, collections.OrderedDict):
                _fail('an OrderedDict with attributes other than _metadata')
            inst.__dict__.update(state)
        elif type(inst) is _hb_class():
            self._build_history_buffer(inst, state)
        elif type(inst) is np.ndarray:
            if type(state) is not tuple or len(state) != 5 or not (
                    _int_tuple(state[1]) and isinstance(state[2], np.dtype)
                    and state[2].kind in _NUMERIC_KINDS
                    and type(state[4]) is bytes):
                _fail('numpy.ndarray with non-numeric or unexpected state')
            inst.__setstate__(state)
        elif isinstance(inst, np.dtype) and inst.kind in _NUMERIC_KINDS:
            if type(state) is not tuple or len(state) != 8 or any(
                    state[i] is not None for i in (2, 3, 4)) or state[1] \
                    not in ('<', '>', '|', '=') or state[5:] != (
                        -1, -1, inst.flags):
                _fail('numpy.dtype with structured or unexpected state')
            inst.__setstate__(state)
        else:
            _fail(f'setting the state of {type(inst).__name__}')

    dispatch[pickle.BUILD[0]] = load_build

    @staticmethod
    def _build_history_buffer(inst: Any, state: Any) -> None:
        if type(state) is not dict or not set(state) <= _HB_KEYS:
            _fail('HistoryBuffer with unexpected state')
        for key in ('_log_history', '_count_history'):
            if key in state and not _numeric_array(state[key]):
                _fail(f'HistoryBuffer.{key} that is not a numeric array')
        if 'max_length' in state and not _is_int(state['max_length']):
            _fail('HistoryBuffer.max_length that is not an int')
        methods = state.get('statistics_methods', {})
        if type(methods) is not dict or not all(
                k in _STATS and type(v) is _StatName and v == k
                for k, v in methods.items()):
            _fail('HistoryBuffer statistics other than mmengine\'s own')
        inst.__dict__.update({k: v for k, v in state.items()
                              if k != 'statistics_methods'})
        inst._set_default_statistics()

    def load_append(self) -> None:
        value = self.stack.pop()
        if type(self.stack[-1]) is not list:
            _fail('APPEND on a non-list')
        self.stack[-1].append(value)

    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self) -> None:
        items = self.pop_mark()
        if type(self.stack[-1]) is not list:
            _fail('APPENDS on a non-list')
        self.stack[-1].extend(items)

    dispatch[pickle.APPENDS[0]] = load_appends

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._setitems(self.stack[-1], [key, value])

    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._setitems(self.stack[-1], items)

    dispatch[pickle.SETITEMS[0]] = load_setitems

    @staticmethod
    def _setitems(target: Any, items: list) -> None:
        if type(target) not in (dict, collections.OrderedDict):
            _fail(f'SETITEM on a {type(target).__name__}')
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        if type(self.stack[-1]) is not set:
            _fail('ADDITEMS on a non-set')
        self.stack[-1].update(items)

    dispatch[pickle.ADDITEMS[0]] = load_additems


def load(file: Any, **kwargs: Any) -> Any:
    """``pickle.load`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, **kwargs).load()


def loads(data: bytes, **kwargs: Any) -> Any:
    """``pickle.loads`` with :class:`RestrictedUnpickler`."""
    import io
    return load(io.BytesIO(data), **kwargs)


#: What ``torch.load(pickle_module=...)`` uses: this module's names.
Unpickler = RestrictedUnpickler
UnpicklingError = pickle.UnpicklingError
