"""HOG cell histograms in NumPy / OpenCV (the reference implementation).

HOG "shape" features, static (release) or along the trajectories (paper).

Cell histograms follow the release's recipe (release spec 2.7): 3 x 3
Sobel gradients, unsigned orientation over pi in 9 bins, magnitude shared
linearly between the two nearest bins, 8 x 8 cells with average pooling, per
colour channel. Deviations (bugs of section 8):

* no random bias on the Sobel filters (8.3): flat regions have zero
  gradient;
* the bin vote always sums to the magnitude, also on bin centres (8.5);
* computed on raw pixels in [0, 1], not ImageNet-normalized ones (8.4), and
  optionally L2-normalized per cell (``norm='l2'``).

Bin ``b`` is centred on ``b * 180 / nbins`` degrees, angle = atan2(gy, gx)
with y pointing down: a vertical edge (horizontal gradient) votes for bin 0.
"""
import cv2
import numpy as np

__all__ = ['pixel_orientation_votes', 'cell_histogram_map', 'l2_normalize']


def pixel_orientation_votes(img: np.ndarray, nbins: int = 9) -> np.ndarray:
    """Per-pixel orientation votes of a single-channel image.

    Args:
        img (np.ndarray): ``[H, W]`` float image (values in [0, 1]).
        nbins (int): Orientation bins over 180 degrees. Defaults to 9.

    Returns:
        np.ndarray: ``[H, W, nbins]`` float32; each pixel's gradient magnitude
        split between its two nearest bins.
    """
    img = img.astype(np.float32)
    # Sobel normalised by 1/8: a unit step gives a gradient of 0.5 on each of
    # the two pixels beside it. Replicate border, like the release.
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8,
                   borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8,
                   borderType=cv2.BORDER_REPLICATE)
    mag = np.sqrt(gx * gx + gy * gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned, [0, pi)
    pos = ang / (np.pi / nbins)  # in bin units; bin b centred on b
    lo = np.floor(pos).astype(np.int64)
    frac = (pos - lo).astype(np.float32)
    lo %= nbins
    hi = (lo + 1) % nbins
    votes = np.zeros(img.shape + (nbins, ), np.float32)
    rows, cols = np.indices(img.shape)
    votes[rows, cols, lo] = mag * (1 - frac)
    votes[rows, cols, hi] += mag * frac
    return votes


def cell_histogram_map(img: np.ndarray, nbins: int = 9, cell: int = 8,
                       channels: str = 'rgb') -> np.ndarray:
    """Cell histograms centred on every pixel.

    ``out[y, x]`` averages the votes of pixels ``y - cell//2 .. y + cell//2 -
    1`` (same in x), so at the grid points of
    :func:`~.trajectory.grid_points` it equals the histogram of the aligned
    cell.

    Args:
        img (np.ndarray): ``[H, W, 3]`` uint8 RGB frame.
        nbins (int): Orientation bins. Defaults to 9.
        cell (int): Cell size in pixels. Defaults to 8.
        channels (str): ``'rgb'`` (per colour channel, release) or ``'gray'``.
            Defaults to ``'rgb'``.

    Returns:
        np.ndarray: ``[H, W, C * nbins]`` float32 (C = 3 or 1).
    """
    f = img.astype(np.float32) / 255.0
    planes = [f[..., c] for c in range(3)] if channels == 'rgb' else [
        cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    ]
    votes = np.concatenate([pixel_orientation_votes(p, nbins) for p in planes],
                           axis=-1)
    # Average over [y - cell//2, y + cell//2 - 1]: pad then filter so that the
    # even-sized window has the documented anchor.
    half = cell // 2
    padded = cv2.copyMakeBorder(votes, half, half, half, half,
                                cv2.BORDER_CONSTANT, value=0)
    if padded.ndim == 2:
        padded = padded[..., None]
    summed = cv2.boxFilter(padded, -1, (cell, cell), anchor=(0, 0),
                           normalize=False, borderType=cv2.BORDER_CONSTANT)
    if summed.ndim == 2:
        summed = summed[..., None]
    h, w = img.shape[:2]
    return summed[:h, :w] / float(cell * cell)


def l2_normalize(hist: np.ndarray, nbins: int, eps: float) -> np.ndarray:
    shape = hist.shape
    h = hist.reshape(*shape[:-1], -1, nbins)
    h = h / (np.linalg.norm(h, axis=-1, keepdims=True) + eps)
    return h.reshape(shape).astype(np.float32)
