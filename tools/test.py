"""Test (evaluate) a checkpoint with a stock mmengine Runner.

Same flags as mmaction2's ``tools/test.py``. Prints the metrics of the test
evaluator (top-1/top-5/mean-class accuracy for recognition configs).

Example:
    python tools/test.py configs/mme/finetune_ssv2.py work_dirs/x/best.pth
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

import mme_plugin  # noqa: E402,F401  (applies shims, registers scope)
from mme_plugin.checkpoint import CheckpointMismatchError  # noqa: E402
from mme_plugin.engine.nonfinite_hook import NonFiniteError  # noqa: E402
from mme_plugin.engine.safe_load import (CheckpointLoadError,  # noqa: E402
                                         trust_checkpoints)
from mme_plugin.utils import (check_path_options,  # noqa: E402
                              exit_after_distributed_run, shutdown_dist)
from mme_plugin.utils.cfg_options import check_pipeline_options  # noqa: E402
from mme_plugin.utils.config_checks import (ConfigCheckError,  # noqa: E402
                                            check_config)
from mme_plugin.utils.cuda_setup import (NoCudaError,  # noqa: E402
                                         deterministic_cublas,
                                         require_cuda_for_launcher)
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments (``argv``, default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the directory to save the evaluation metrics')
    parser.add_argument(
        '--dump',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs')
    parser.add_argument(
        '--show-dir', help='directory where visualised results are saved')
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


def build_config(args: argparse.Namespace) -> Config:
    """Read the config file and apply the command-line arguments."""
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint {args.checkpoint} does not exist: pass '
                         'the .pth file written by tools/train.py.')
    cfg = Config.fromfile(args.config)
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'{args.config} has no test_dataloader: it is a '
                         'pretraining config; test a finetune config.')
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        check_pipeline_options(cfg, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.dump is not None:
        assert args.dump.endswith(('.pkl', '.pickle')), \
            'The dump file must be a pkl file.'
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = list(cfg.test_evaluator) + [dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]
    # cuBLAS needs its workspace setting before the runner initialises CUDA
    deterministic_cublas(bool(cfg.get('randomness', {}).get(
        'deterministic', False)))
    return cfg


def run(cfg: Config) -> Dict:
    """Test with a stock runner; prints and returns the metrics. The
    checkpoint must fit the model completely (classifier included), else
    :class:`~mme_plugin.checkpoint.CheckpointMismatchError` names the keys
    and the conversion command (:mod:`mme_plugin.engine.checkpoint_fit`)."""
    check_config(cfg, ('test_dataloader', ))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    print('Test metrics:')
    for key, value in metrics.items():
        print(f'  {key}: {value:.4f}' if isinstance(value, float) else
              f'  {key}: {value}')
    return metrics


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point."""
    try:
        run(build_config(parse_args(argv)))
    except (CheckpointMismatchError, CheckpointLoadError,
            NonFiniteError, ConfigCheckError, NoCudaError) as e:
        raise SystemExit(f'error: {e}') from None
    if shutdown_dist() and argv is None:  # a torchrun rank: see the helper
        exit_after_distributed_run()


if __name__ == '__main__':
    main()
