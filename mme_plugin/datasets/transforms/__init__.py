"""Data transforms of the MME plugin."""
from .video_io import (DecordReader, PyAVReader, VideoDecode, VideoInit,
                       VideoReadError, open_video)

__all__ = [
    'DecordReader', 'PyAVReader', 'VideoDecode', 'VideoInit',
    'VideoReadError', 'open_video'
]
