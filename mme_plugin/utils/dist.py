"""Distributed helpers for the tools."""
import torch.distributed as dist

__all__ = ['shutdown_dist']


def shutdown_dist() -> None:
    """Tear the process group down before exit.

    Without it, gloo ranks sometimes abort (SIGABRT) in interpreter teardown
    after a successful run, and torchrun reports the job as failed.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
