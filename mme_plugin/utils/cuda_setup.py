"""CUDA checks and settings of the tools, made before anything touches CUDA.

* :func:`require_cuda_for_launcher`: a distributed launch (``--launcher
  pytorch/slurm/mpi``, i.e. ``tools/dist_train.sh``, ``tools/dist_test.sh``,
  ``tools/slurm_train.sh``) asks for GPUs. Without usable CUDA (a CPU build
  of torch, a broken driver) it would otherwise train N gloo processes in
  fp32 on the CPU, orders of magnitude slower, with only a warning. It
  fails instead, naming torch's build and the fix, unless
  ``MME_ALLOW_CPU_DIST=1`` opts in (the tests do: CPU-only CI runs 2 gloo
  processes).
* :func:`deterministic_cublas`: ``torch.use_deterministic_algorithms(True)``
  (mmengine's ``randomness.deterministic=True``, ``--deterministic``) makes
  the first cuBLAS matmul raise unless ``CUBLAS_WORKSPACE_CONFIG`` is set;
  it is set to ``:4096:8`` (if unset) before the runner initialises CUDA.
"""
import os
from typing import Optional

import torch

__all__ = [
    'CPU_DIST_ENV', 'CUBLAS_ENV', 'CUBLAS_DETERMINISTIC', 'NoCudaError',
    'cuda_report', 'require_cuda_for_launcher', 'deterministic_cublas'
]

#: Environment variable that allows a distributed launch without CUDA.
CPU_DIST_ENV = 'MME_ALLOW_CPU_DIST'
#: cuBLAS's workspace setting that deterministic mode needs.
CUBLAS_ENV = 'CUBLAS_WORKSPACE_CONFIG'
CUBLAS_DETERMINISTIC = ':4096:8'


class NoCudaError(RuntimeError):
    """A distributed (GPU) launch on a machine without usable CUDA."""


def _cpu_dist_allowed() -> bool:
    return os.environ.get(CPU_DIST_ENV, '').strip().lower() in (
        '1', 'true', 'yes', 'on')


def cuda_report() -> str:
    """torch's build and CUDA state, with the reason CUDA is unusable.

    Returns:
        str: e.g. ``torch 2.13.0+cpu (CUDA build: none),
        torch.cuda.is_available()=False, device_count()=0: Torch not
        compiled with CUDA enabled``.
    """
    available = torch.cuda.is_available()
    count = torch.cuda.device_count()
    text = (f'torch {torch.__version__} (CUDA build: '
            f'{torch.version.cuda or "none"}), torch.cuda.is_available()='
            f'{available}, torch.cuda.device_count()={count}')
    if not available:
        try:  # the reason: no CUDA build, no driver, driver too old, ...
            torch.cuda.init()
        except Exception as e:  # noqa: BLE001 - any failure is the reason
            text += f': {type(e).__name__}: {str(e).strip()}'
    return text


def require_cuda_for_launcher(launcher: str,
                              local_rank: Optional[int] = None) -> None:
    """Refuse a distributed launch that would run on the CPU.

    Args:
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        local_rank (int, optional): This process's GPU index; checked
            against the visible GPUs. Defaults to ``$LOCAL_RANK`` if set.

    Raises:
        NoCudaError: CUDA is unusable and ``MME_ALLOW_CPU_DIST`` is not set,
            or ``local_rank`` has no GPU.
    """
    if launcher == 'none':
        return
    if not torch.cuda.is_available():
        if _cpu_dist_allowed():
            return
        raise NoCudaError(
            f'--launcher {launcher} (tools/dist_train.sh, dist_test.sh, '
            'slurm_train.sh) asks for GPUs, but CUDA is not usable here: '
            f'{cuda_report()}. Install a CUDA build of torch (torch.version.'
            'cuda must not be None; see requirements.txt), check the driver '
            'with `nvidia-smi` and CUDA_VISIBLE_DEVICES. To run distributed '
            f'on the CPU (gloo, fp32, slow) on purpose, set {CPU_DIST_ENV}=1.')
    if local_rank is None and os.environ.get('LOCAL_RANK', '').isdigit():
        local_rank = int(os.environ['LOCAL_RANK'])
    count = torch.cuda.device_count()
    if launcher == 'pytorch' and local_rank is not None and \
            local_rank >= count:
        raise NoCudaError(
            f'local rank {local_rank} has no GPU: only {count} visible '
            f'({cuda_report()}). Start at most {count} processes per node '
            '(the GPUS argument of tools/dist_train.sh) or check '
            'CUDA_VISIBLE_DEVICES.')


def deterministic_cublas(deterministic: bool) -> bool:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` for deterministic runs, if unset.

    Call it before CUDA is initialised (before the runner is built).

    Args:
        deterministic (bool): ``randomness.deterministic`` of the config.

    Returns:
        bool: Whether the variable was set by this call.
    """
    if not deterministic or os.environ.get(CUBLAS_ENV):
        return False
    os.environ[CUBLAS_ENV] = CUBLAS_DETERMINISTIC
    return True
