"""Losses of the MME plugin."""
from .mme_loss import MMELoss, NoValidTargetsError

__all__ = ['MMELoss', 'NoValidTargetsError']
