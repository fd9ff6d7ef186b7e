"""Shim: one training run per work dir.

Two runs started in one work dir both ran and overwrote each other's
checkpoints. ``Runner.train`` now holds a lock file in the work dir and
refuses a second run; the lock lives in :mod:`mme_plugin.engine.workdir_lock`
and this module installs it.
"""
__all__ = ['patch_workdir_lock']


def patch_workdir_lock() -> None:
    """One training run per work dir (idempotent;
    :func:`mme_plugin.engine.workdir_lock.patch_runner`)."""
    from mme_plugin.engine.workdir_lock import patch_runner
    patch_runner()
