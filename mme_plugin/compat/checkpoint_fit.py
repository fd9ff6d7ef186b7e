"""Shim: refuse checkpoints that do not fit the model.

mmengine loads ``load_from`` and test checkpoints non-strictly and only logs
what did not load, so a wrong checkpoint trains from scratch or tests at
chance with exit code 0. The check lives in
:mod:`mme_plugin.engine.checkpoint_fit`; this module installs it on the
``Runner``.
"""
__all__ = ['patch_checkpoint_fit']


def patch_checkpoint_fit() -> None:
    """Refuse checkpoints that do not fit the model (idempotent;
    :func:`mme_plugin.engine.checkpoint_fit.patch_runner`)."""
    from mme_plugin.engine.checkpoint_fit import patch_runner
    patch_runner()
