"""Input/output: video readers and writers, the flow cache."""
from .flow_cache import FlowCache, FlowCacheError, FlowCacheReadOnly
from .video import (DecordReader, PyAVReader, VideoReadError, get_frames,
                    open_video, write_video)

__all__ = [
    'FlowCache', 'FlowCacheError', 'FlowCacheReadOnly', 'DecordReader',
    'PyAVReader', 'VideoReadError', 'get_frames', 'open_video', 'write_video'
]
