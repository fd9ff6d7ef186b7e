"""Scan videos for problems before training (unreadable, empty, too short)."""
import multiprocessing as mp
import time
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np

from mme_plugin.io.video import VideoReadError, get_frames, open_video

__all__ = ['check_video', 'check_videos']


def check_video(path: str, min_frames: int = 1,
                decode_probe: bool = True) -> Optional[str]:
    """Why ``path`` cannot be trained on, or None if it is fine.

    Args:
        path (str): Video file.
        min_frames (int): Frames one clip needs (e.g. 61 for 16 x 4 with
            dense tubes). Defaults to 1.
        decode_probe (bool): Also decode the first, middle and last frame
            (catches truncated files). Defaults to True.
    """
    try:
        reader = open_video(path)
        if reader.num_frames < min_frames:
            return (f'too short: {reader.num_frames} frames < {min_frames} '
                    'needed')
        if decode_probe:
            n = reader.num_frames
            frames, _ = get_frames(reader, path, sorted({0, n // 2, n - 1}))
            if any(np.asarray(f).ndim != 3 for f in frames):
                return 'decoded frames have a wrong shape'
    except VideoReadError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - any decoder failure
        return f'{type(e).__name__}: {e}'
    return None


def _check(args: Tuple[str, int, bool]) -> Tuple[str, Optional[str]]:
    return args[0], check_video(*args)


def check_videos(paths: Iterable[str], min_frames: int = 1,
                 workers: int = 1, decode_probe: bool = True,
                 progress: Optional[Callable[[int, int, float], None]] = None
                 ) -> List[Tuple[str, str]]:
    """Check many videos in parallel.

    Args:
        paths (Iterable[str]): Video files.
        min_frames (int): See :func:`check_video`.
        workers (int): Processes. Defaults to 1.
        decode_probe (bool): See :func:`check_video`.
        progress (Callable, optional): Called with (done, total, eta_s).

    Returns:
        list[tuple[str, str]]: (path, reason) of every bad video.
    """
    paths = list(paths)
    jobs = [(p, min_frames, decode_probe) for p in paths]
    bad, start = [], time.time()
    if workers > 1:
        pool = mp.get_context('fork').Pool(workers)
        it = pool.imap_unordered(_check, jobs, chunksize=4)
    else:
        pool, it = None, map(_check, jobs)
    try:
        for i, (path, reason) in enumerate(it, 1):
            if reason:
                bad.append((path, reason))
            if progress:
                el = time.time() - start
                progress(i, len(paths), el / i * (len(paths) - i))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return sorted(bad)
