"""Train a model (MME pretraining or recognition) with a stock mmengine Runner.

Same flags as mmaction2's ``tools/train.py``; the plugin is imported (and its
compatibility shims applied) before the config is read.

Example:
    python tools/train.py configs/mme/pretrain_ssv2.py --work-dir work_dirs/x
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import mme_plugin  # noqa: E402,F401  (applies shims, registers scope)
from mme_plugin.checkpoint import CheckpointMismatchError  # noqa: E402
from mme_plugin.datasets.annotations import AnnotationError  # noqa: E402
from mme_plugin.datasets.skip_bad_samples import (  # noqa: E402
    BadSampleLimitError)
from mme_plugin.engine.nonfinite_hook import NonFiniteError  # noqa: E402
from mme_plugin.engine.safe_load import (CheckpointLoadError,  # noqa: E402
                                         trust_checkpoints)
from mme_plugin.engine.workdir_lock import WorkDirInUseError  # noqa: E402
from mme_plugin.utils import (amp_fallback_without_accelerator,  # noqa: E402
                              resolve_amp_dtype,
                              check_path_options, exit_after_distributed_run,
                              shutdown_dist)
from mme_plugin.utils.cfg_options import check_pipeline_options  # noqa: E402
from mme_plugin.utils.config_checks import (ConfigCheckError,  # noqa: E402
                                            check_config)
from mme_plugin.utils.cuda_setup import (NoCudaError,  # noqa: E402
                                         deterministic_cublas,
                                         require_cuda_for_launcher)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments (``argv``, default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If a checkpoint path is given, resume from it; without a value, '
        'resume from the latest checkpoint in the work dir.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training (on a machine '
        'without an accelerator: fp32, with a warning)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by the real total batch size')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='set a different seed on each rank')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='deterministic algorithms (cuDNN, and cuBLAS via '
        'CUBLAS_WORKSPACE_CONFIG=:4096:8 if unset); see docs/stack_notes.md '
        'for what stays non-deterministic on a GPU')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (pytorch/slurm/mpi need CUDA; set '
        'MME_ALLOW_CPU_DIST=1 to run distributed on the CPU on purpose)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load checkpoints with full unpickling (can run code from the '
        'file); only for files you trust that the safe loader refuses')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.trust_checkpoint:
        trust_checkpoints()
    check_path_options(args.cfg_options)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    # before the config is read: a GPU launch without usable CUDA fails here
    require_cuda_for_launcher(args.launcher)
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply command-line arguments to the config.

    Args:
        cfg (Config): The loaded config.
        args (argparse.Namespace): Parsed arguments.

    Returns:
        Config: The updated config.
    """
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise SystemExit(f'--amp is not supported with {optim_wrapper}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        # bf16 where the GPU has it, else fp16 + dynamic loss scale
        cfg.optim_wrapper.setdefault('dtype', 'auto')
        cfg.optim_wrapper.setdefault('loss_scale', 'auto')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    # Config.setdefault returns a copy when it inserts: set, then index.
    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', {})
        cfg.auto_scale_lr['enable'] = True
    if args.seed is not None:
        cfg.setdefault('randomness', {})
        cfg.randomness['seed'] = args.seed
    if args.diff_rank_seed:
        cfg.setdefault('randomness', {})
        cfg.randomness['diff_rank_seed'] = True
    if args.deterministic:
        cfg.setdefault('randomness', {})
        cfg.randomness['deterministic'] = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        check_pipeline_options(cfg, args.cfg_options)
    if args.no_validate:  # after the options, which may still set val_*
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    # AMP recipes (and --amp) train in fp32 where there is no accelerator.
    amp_fallback_without_accelerator(cfg)
    # dtype='auto': bf16 if the GPU supports it, else fp16 + loss scaling;
    # logged once the runner's logger exists (run()).
    global _AMP_NOTE
    _AMP_NOTE = resolve_amp_dtype(cfg)
    # cuBLAS needs its workspace setting before the runner initialises CUDA
    deterministic_cublas(bool(cfg.get('randomness', {}).get(
        'deterministic', False)))
    return cfg


#: The precision line of the last merge_args (logged at the start of run).
_AMP_NOTE: Optional[str] = None


def build_config(args: argparse.Namespace) -> Config:
    """Read the config file and apply the command-line arguments."""
    return merge_args(Config.fromfile(args.config), args)


def run(cfg: Config) -> None:
    """Train with a stock runner built from ``cfg``, after checking that
    its pipelines fit its model (:func:`~mme_plugin.utils.config_checks.
    check_config`)."""
    check_config(cfg, ('train_dataloader', 'val_dataloader'))
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
        Runner.from_cfg(cfg)
    if _AMP_NOTE:
        runner.logger.info(_AMP_NOTE)
    runner.train()


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    try:
        run(build_config(parse_args(argv)))
    except (CheckpointMismatchError, AnnotationError, CheckpointLoadError,
            NonFiniteError, WorkDirInUseError, ConfigCheckError,
            NoCudaError, BadSampleLimitError) as e:
        raise SystemExit(f'error: {e}') from None
    if shutdown_dist() and argv is None:  # a torchrun rank: see the helper
        exit_after_distributed_run()


if __name__ == '__main__':
    main()
