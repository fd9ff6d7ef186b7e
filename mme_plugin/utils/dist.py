"""Distributed helpers for the tools."""
import logging
import os
import sys

import torch.distributed as dist

__all__ = ['shutdown_dist', 'exit_after_distributed_run']


def shutdown_dist() -> bool:
    """Tear the process group down before exit.

    Without it, gloo ranks sometimes abort (SIGABRT) in interpreter teardown
    after a successful run, and torchrun reports the job as failed.

    Returns:
        bool: Whether a process group was torn down.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        return True
    return False


def exit_after_distributed_run() -> None:
    """End a rank whose distributed run has finished, skipping interpreter
    teardown.

    Even after :func:`shutdown_dist`, a gloo rank still aborted now and then
    in teardown on a loaded 2-core machine ("terminate called without an
    active exception", SIGABRT, after the last checkpoint was saved), and
    torchrun then reports the whole job as failed. The run's work is done
    and on disk at this point, so logs and streams are flushed and the
    process exits with status 0 directly.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
