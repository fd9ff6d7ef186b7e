"""Reading and writing videos.

Reading: decord first (fast random access), PyAV as the fallback. decord
0.6.0 fails on some frame widths (16, 24, 48, 72 px seen, see
``docs/stack_notes.md``) and on some containers; PyAV decodes every size,
sequentially, keeping only the requested frames. Errors name the file and
the fix. Writing: the codecs of the common datasets (see
:func:`write_video`), used by the synthetic dataset, the tests and the
benchmarks.
"""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ['VideoReadError', 'open_video', 'get_frames', 'PyAVReader',
           'DecordReader', 'write_video']


class VideoReadError(RuntimeError):
    """A video cannot be opened or decoded; the message names file and fix."""


class DecordReader:
    """Random-access reader over :class:`decord.VideoReader`.

    Args:
        filename (str): Video path.
        num_threads (int): Decoder threads. Defaults to 1.
    """

    def __init__(self, filename: str, num_threads: int = 1) -> None:
        import decord
        self.filename = filename
        self._vr = decord.VideoReader(filename, num_threads=num_threads)
        self.num_frames = len(self._vr)

    def get_batch(self, indices: Sequence[int]) -> List[np.ndarray]:
        """Decode frames (RGB uint8 H x W x 3) at ``indices``.

        decord mis-decodes some widths (it raises ``DECORDError`` on them);
        the check here catches any other malformed batch. Either way the
        caller (:class:`VideoDecode`) retries with PyAV, so opening needs no
        probe decode of frame 0 (which costs an extra seek when a clip
        starts past the first keyframe).
        """
        batch = self._vr.get_batch(list(indices)).asnumpy()
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise RuntimeError(f'decord returned shape {batch.shape}')
        return list(batch)


class PyAVReader:
    """Sequential reader over PyAV; decodes only up to the last needed frame.

    Args:
        filename (str): Video path.
    """

    def __init__(self, filename: str) -> None:
        import av
        self.filename = filename
        with av.open(filename) as container:
            stream = container.streams.video[0]
            num = stream.frames
            if not num:  # container without a frame count: count packets
                num = sum(1 for p in container.demux(stream) if p.size)
        self.num_frames = int(num)

    def get_batch(self, indices: Sequence[int]) -> List[np.ndarray]:
        """Decode frames (RGB uint8 H x W x 3) at ``indices``."""
        import av
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        frames: Dict[int, np.ndarray] = {}
        with av.open(self.filename) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format='rgb24')
                if i >= last:
                    break
        missing = wanted - set(frames)
        if missing:
            raise VideoReadError(
                f'{self.filename}: frames {sorted(missing)[:5]} could not be '
                f'decoded (the file reports {self.num_frames} frames but ends '
                'early; it is probably truncated). Re-encode or remove it.')
        return [frames[int(i)] for i in indices]


def get_frames(reader: Any, filename: str,
               indices: Sequence[int]) -> Tuple[List[np.ndarray], Any]:
    """Decode ``indices`` with ``reader``, retrying with PyAV where decord
    fails (some widths, some containers).

    Args:
        reader: A reader from :func:`open_video`.
        filename (str): The video (named in errors, reopened for PyAV).
        indices (Sequence[int]): Frame indices.

    Returns:
        tuple: The frames and the reader that decoded them.

    Raises:
        VideoReadError: If PyAV fails too.
    """
    try:
        return reader.get_batch(indices), reader
    except VideoReadError:
        raise
    except Exception as e:  # noqa: BLE001 - decord failure: try PyAV
        if isinstance(reader, PyAVReader):
            raise VideoReadError(f'{filename}: decoding failed ({e}).') from e
        reader = PyAVReader(filename)
        return reader.get_batch(indices), reader


def open_video(filename: str, backend: str = 'auto') -> Any:
    """Open a video, trying decord then PyAV.

    Args:
        filename (str): Video path.
        backend (str): ``'auto'`` (decord, then PyAV), ``'decord'`` or
            ``'pyav'``. Defaults to ``'auto'``.

    Returns:
        DecordReader | PyAVReader: A reader with ``num_frames`` and
        ``get_batch``.

    Raises:
        VideoReadError: If the file is missing, empty or undecodable.
    """
    if not osp.isfile(filename):
        raise VideoReadError(
            f'{filename}: no such video file. Check data_prefix / ann_file '
            'in the config, or remove the line from the annotation list.')
    if osp.getsize(filename) == 0:
        raise VideoReadError(f'{filename}: the file is empty (0 bytes). '
                             'Re-download it or remove it from the list.')
    order = {'auto': ('decord', 'pyav'), 'decord': ('decord', ),
             'pyav': ('pyav', )}[backend]
    errors = []
    for name in order:
        try:
            reader = DecordReader(filename) if name == 'decord' else \
                PyAVReader(filename)
        except ImportError as e:  # decord is optional
            errors.append(f'{name}: {e}')
            continue
        except Exception as e:  # noqa: BLE001 - decoders raise anything
            errors.append(f'{name}: {type(e).__name__}: {e}')
            continue
        if reader.num_frames <= 0:
            errors.append(f'{name}: no frames')
            continue
        return reader
    raise VideoReadError(
        f'{filename}: cannot decode the video ({"; ".join(errors)}). It is '
        'corrupt or in an unsupported format: re-encode it (e.g. ffmpeg -i '
        'IN -c:v libx264 OUT.mp4) or remove it from the annotation list. '
        'tools/analysis/check_dataset.py lists all such files.')


def write_video(path: str, frames: np.ndarray, fps: int = 30,
                gop: Optional[int] = None, lossless: bool = False) -> None:
    """Write RGB frames to a video file with PyAV: H.264 (``.mp4``, like
    Kinetics), VP9 (``.webm``, like Something-Something V2) or MPEG-4 Part 2
    (``.avi``, like UCF101 and HMDB51).

    Args:
        path (str): Output path (``.mp4``, ``.webm`` or ``.avi``).
        frames (np.ndarray): uint8 frames, T x H x W x 3, RGB. Height and
            width must be even (yuv420p).
        fps (int): Frame rate. Defaults to 30.
        gop (int, optional): Maximum keyframe interval. Defaults to None
            (x264's default, 250 frames).
        lossless (bool): Lossless H.264 (qp 0): the decoded frames are the
            written ones (after 4:2:0 chroma subsampling) on every run.
            Lossy x264 here gave different files for the same frames now
            and then (seen in one clip in 24, depending on the process
            state), which made the built-in dataset differ between runs.
            Defaults to False (crf 12, like real footage).
    """
    import av
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f'{path}: frame size {w}x{h} must be even')
    with av.open(path, mode='w') as container:
        webm, avi = path.endswith('.webm'), path.endswith('.avi')
        codec = 'libvpx-vp9' if webm else 'mpeg4' if avi else 'libx264'
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = 'yuv420p'
        stream.thread_count = 1
        if webm:
            options = {'lossless': '1'} if lossless else {
                'crf': '30', 'b:v': '0'}
            options.update({'deadline': 'realtime', 'cpu-used': '8'})
        elif avi:
            options = {'qscale': '1' if lossless else '3'}
        else:
            options = {'qp': '0'} if lossless else {'crf': '12'}
            options['preset'] = 'fast'
        if gop is not None:
            options['g'] = str(gop)
        stream.options = options
        for frame in frames:
            # RGB -> I420 with OpenCV: a fixed conversion, so lossless files
            # decode to the same frames everywhere.
            yuv = cv2.cvtColor(np.ascontiguousarray(frame),
                               cv2.COLOR_RGB2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format='yuv420p')
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
