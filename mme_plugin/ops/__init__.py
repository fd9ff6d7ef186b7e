"""Tensor operations shared by the data pipeline and the models."""
from .hog import hog_at_points, hog_cell_maps, l2_normalize_cells

__all__ = ['hog_at_points', 'hog_cell_maps', 'l2_normalize_cells']
