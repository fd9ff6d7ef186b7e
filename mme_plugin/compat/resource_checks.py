"""Shim: open-file limit and ``/dev/shm`` checks when training starts.

Under the usual ``ulimit -n`` of 1024 the dataloader ran out of open files
and hung, and a container's 64 MB ``/dev/shm`` failed at the first batch.
Building the train loop now raises the soft open-file limit to the hard one
and fails early when ``/dev/shm`` is too small; ``prefetch_factor`` is
dropped from loaders with ``num_workers=0`` (torch refuses it). The checks
live in :mod:`mme_plugin.utils.resources`; this module installs them.
"""
__all__ = ['patch_resource_checks']


def patch_resource_checks() -> None:
    """Open-file limit and ``/dev/shm`` checks when training starts
    (idempotent; :func:`mme_plugin.utils.resources.patch_runner`)."""
    from mme_plugin.utils.resources import patch_runner
    patch_runner()
