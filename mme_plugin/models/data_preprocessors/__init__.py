"""Data preprocessors of the MME plugin."""
from .mme_data_preprocessor import MMEDataPreprocessor, StackedSamples

__all__ = ['MMEDataPreprocessor', 'StackedSamples']
