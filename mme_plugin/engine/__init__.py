"""Engine components (hooks) of the MME plugin."""
from .hooks import ReseedHook, SkippedSamplesHook
from .nonfinite_hook import NonFiniteError, NonFiniteLossHook

__all__ = [
    'ReseedHook', 'SkippedSamplesHook', 'NonFiniteError', 'NonFiniteLossHook'
]
