"""Targets computed on the training device."""
from .point_hog import PointHOG

__all__ = ['PointHOG']
