"""Engine components (hooks) of the MME plugin."""
from .collapse_monitor import CollapseMonitorHook
from .hooks import ReseedHook, SkippedSamplesHook
from .nonfinite_hook import NonFiniteError, NonFiniteLossHook

__all__ = [
    'ReseedHook', 'SkippedSamplesHook', 'NonFiniteError', 'NonFiniteLossHook',
    'CollapseMonitorHook'
]
