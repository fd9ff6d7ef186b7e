"""Utilities of the MME plugin."""
from .amp import (amp_fallback_without_accelerator, resolve_amp_dtype,
                  select_amp_dtype)
from .cfg_options import check_path_options
from .dist import exit_after_distributed_run, shutdown_dist
from .pipeline import (add_pipeline_edit, apply_pipeline_edits, edit_key,
                       effective_pipeline, find_transform, flow_cache_options,
                       transform_index, transform_type)
from .setup_env import register_all_modules
from .state_diff import CheckpointMismatchError, StateDiff, diff_state_dicts

__all__ = [
    'register_all_modules', 'shutdown_dist', 'exit_after_distributed_run',
    'amp_fallback_without_accelerator', 'resolve_amp_dtype',
    'select_amp_dtype', 'check_path_options',
    'transform_type', 'find_transform', 'transform_index',
    'apply_pipeline_edits', 'effective_pipeline', 'edit_key',
    'add_pipeline_edit', 'flow_cache_options', 'CheckpointMismatchError',
    'StateDiff', 'diff_state_dicts'
]
