"""Utilities of the MME plugin."""
from .amp import amp_fallback_without_accelerator
from .cfg_options import check_path_options
from .dist import shutdown_dist
from .setup_env import register_all_modules

__all__ = [
    'register_all_modules', 'shutdown_dist',
    'amp_fallback_without_accelerator', 'check_path_options'
]
