"""Shim: every mmengine checkpoint scheme loads with the safe loader.

mmengine 0.10.7 calls ``torch.load`` with torch's default
``weights_only=True`` (torch >= 2.6), which rejects mmengine's own
``HistoryBuffer`` objects: resume, ``load_from``, ``tools/test.py CKPT`` and
``Pretrained`` init fail. Every scheme (local and remote) loads with this
project's restricted unpickler, which can build only tensors and plain data,
and refuses truncated files and non-finite weights
(:mod:`mme_plugin.engine.safe_load`; ``docs/stack_notes.md``, breakage 2).
"""
import os
import types
from typing import Any

import torch

__all__ = ['patch_checkpoint_loader']


def _load_local(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint without running code from it
    (:func:`~mme_plugin.engine.safe_load.safe_torch_load`).

    Args:
        filename (str): Path of the checkpoint.
        map_location (Any): Same as :func:`torch.load`.

    Returns:
        Any: The loaded object.

    Raises:
        FileNotFoundError: ``filename`` is not a file.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename} can not be found: check the path given '
            'to --resume / load_from / tools/test.py.')
    from mme_plugin.engine.safe_load import safe_torch_load
    return safe_torch_load(filename, map_location=map_location)


class _SafeTorchProxy(types.ModuleType):
    """``torch`` as mmengine's checkpoint modules see it: ``load`` is the
    safe loader, every other attribute is torch's own."""

    def __init__(self) -> None:
        super().__init__('torch')

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def load(f: Any, map_location: Any = None, *args: Any,
             **kwargs: Any) -> Any:
        """Safe load of what mmengine's remote schemes fetched."""
        from mme_plugin.engine.safe_load import safe_torch_load
        return safe_torch_load(f, map_location=map_location)


def _load_url(url: str, model_dir: Any = None, map_location: Any = None,
              progress: bool = True, **kwargs: Any) -> Any:
    """mmengine's ``load_url`` (used by the ``http(s)://``, ``open-mmlab://``
    and ``torchvision://`` schemes), loading with the safe loader.

    torch's ``load_state_dict_from_url``, which mmengine calls, unpickles
    with ``weights_only=False``: a checkpoint URL could run code.

    Args:
        url (str): Where the checkpoint is.
        model_dir (Any): Download directory; torch hub's ``checkpoints``
            directory when None.
        map_location (Any): Same as :func:`torch.load`.
        progress (bool): Show the download progress. Defaults to True.
        **kwargs: Ignored (torch's other ``load_state_dict_from_url``
            arguments).

    Returns:
        Any: The loaded object.
    """
    from urllib.parse import urlparse

    from torch.hub import download_url_to_file, get_dir

    from mme_plugin.engine.safe_load import safe_torch_load
    model_dir = model_dir or os.path.join(get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = os.path.join(model_dir, os.path.basename(urlparse(url).path))
    if not os.path.exists(cached):
        download_url_to_file(url, cached, None, progress=progress)
    return safe_torch_load(cached, map_location=map_location)


def patch_checkpoint_loader() -> None:
    """Every mmengine checkpoint scheme loads through the safe loader.

    The local scheme is re-registered with :func:`_load_local`; the URL
    schemes download with torch's downloader and load with
    :func:`_load_url`; the others (``s3://``/petrel, ``pavi://``) call
    ``torch.load`` inside ``mmengine.runner.checkpoint``, which gets a
    ``torch`` whose ``load`` is
    :func:`~mme_plugin.engine.safe_load.safe_torch_load`. Idempotent.
    """
    import mmengine.runner.checkpoint as ckpt_mod
    ckpt_mod.CheckpointLoader.register_scheme(
        prefixes='', force=True)(_load_local)
    ckpt_mod.load_url = _load_url
    if not isinstance(ckpt_mod.torch, _SafeTorchProxy):
        ckpt_mod.torch = _SafeTorchProxy()
