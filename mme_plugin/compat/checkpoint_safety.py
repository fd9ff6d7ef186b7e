"""Shim: checkpoints that survive a kill.

mmengine deletes the oldest kept checkpoint before writing the new one,
writes in place and resumes from whatever ``last_checkpoint`` names;
``max_keep_ckpts=None`` raises a TypeError. The replacements (atomic
writes, delete-after-save, resume from the newest checkpoint that loads)
live in :mod:`mme_plugin.engine.safe_checkpoint`; this module installs them.
"""
__all__ = ['patch_checkpoint_safety']


def patch_checkpoint_safety() -> None:
    """Atomic checkpoint writes, delete-after-save, resume from the newest
    checkpoint that loads (idempotent;
    :func:`mme_plugin.engine.safe_checkpoint.patch_all`)."""
    from mme_plugin.engine.safe_checkpoint import patch_all
    patch_all()
