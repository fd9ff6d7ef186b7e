"""Engine components (hooks) of the MME plugin."""
from .hooks import ReseedHook

__all__ = ['ReseedHook']
