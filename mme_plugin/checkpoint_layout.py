"""Row layouts of the pretraining decoder heads, for checkpoint conversion.

A head's output rows mean something only with the settings of its target:
HOG is ``steps x cells x channels x bins`` (steps = L + 1 along the
trajectory, 1 static; cells = (patch / cell size)^2; 3 channels rgb, 1
gray), trajectories ``2 coords x L steps x points``, pixels ``tubelet x
patch^2 x channels``. This module derives that layout from the model a
pretraining config builds (:func:`layout_from_model`), or, without a config,
infers it from the tensor shapes (:func:`infer_layout`, refusing when the
shapes allow several layouts), and states what the official release's
format can hold (:func:`official_problems`).

Facts of the official format (``docs/release_spec.md`` 2.6-2.7, 4.2), named
as the ``OFFICIAL_*`` constants: the release's HOG head is one static HOG of 3
colour channels x 9 bins per 8 x 8 cell, rows ordered (channel, bin, cell
row, cell column); its trajectory head is ``2 x L x 4`` points
(``traj_dim = traj_len * 2 * 4``), rows (coordinate, step, point) as here;
its heads are MLPs (Linear, GELU, Linear) at ``decoder.0.head.<i>`` with
HOG first (target ``idt``: HOG + trajectory; target ``hog``: HOG only);
VideoMAE has one pixel Linear at ``decoder.head``.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import torch

from mme_plugin.utils.state_diff import CheckpointMismatchError

__all__ = [
    'HOGLayout', 'TrajLayout', 'PixelLayout', 'HeadLayout',
    'CheckpointLayout', 'hog_head_permutation', 'layout_from_model',
    'layout_from_config', 'infer_layout', 'check_layout_fits',
    'official_problems',
    'official_head_layout', 'head_linear_indices', 'LAYOUT_KEY',
    'OFFICIAL_HOG_CHANNELS', 'OFFICIAL_HOG_BINS', 'OFFICIAL_TRAJ_POINTS',
    'OFFICIAL_MME_HEADS', 'INFERENCE_ASSUMPTIONS', 'LAYOUT_VERSION',
    'TRAJ_COORDS', 'HOG_CHANNELS', 'PIXEL_CHANNELS'
]

#: Top-level key of a converted file holding its layout (plain values).
LAYOUT_KEY = 'mme_layout'
#: Version of the :data:`LAYOUT_KEY` metadata this module writes and reads.
LAYOUT_VERSION = 1
#: Coordinates (x, y) of each trajectory step.
TRAJ_COORDS = 2
#: HOG channels of each ``channels`` setting of ``HOGTarget`` / ``ComputeHOG``.
HOG_CHANNELS = {'rgb': 3, 'gray': 1}
#: Colour channels of a pixel target (RGB frames).
PIXEL_CHANNELS = 3
#: Tubelet size assumed for a backbone that does not state one.
DEFAULT_TUBELET = 2
#: The official HOG head: 3 colour channels x 9 bins per cell, one static
#: HOG per token (release spec 2.7).
OFFICIAL_HOG_CHANNELS, OFFICIAL_HOG_BINS = 3, 9
#: The official trajectory head: 2 coords x L steps x 4 points (release
#: spec 2.6).
OFFICIAL_TRAJ_POINTS = 4
#: Official MME heads in ``decoder.0.head.<i>`` order (release spec 4.2).
OFFICIAL_MME_HEADS = ('hog', 'traj')
#: What shape inference assumes (the shapes cannot show these).
INFERENCE_ASSUMPTIONS = (
    '9 orientation bins, 3 (rgb) or 1 (gray) HOG channels, HOG cells and '
    'trajectory points on one grid (cell_size == grid_step) that tiles the '
    'patch')


def _error(msg: str) -> Exception:
    return CheckpointMismatchError(msg)


def hog_head_permutation(points: int,
                         channels: int = OFFICIAL_HOG_CHANNELS,
                         nbins: int = OFFICIAL_HOG_BINS,
                         steps: int = 1) -> torch.Tensor:
    """Index map from the release's HOG token layout to this project's.

    The release lays a token's HOG out as (channel, bin, cell row, cell
    column) (``(c h2 w2)`` of a ``channel x bin`` map); this project as
    (step, cell row, cell column, channel, bin). With several steps the
    release order is taken as (channel, bin, step, cell row, cell column).
    ``ours = release[perm]``.

    Args:
        points (int): Cells per token (2 x 2 = 4 in the release).
        channels (int): Colour channels of the HOG (3: rgb, 1: gray).
            Defaults to 3.
        nbins (int): Orientation bins. Defaults to 9.
        steps (int): HOG steps per token (1: static). Defaults to 1.

    Returns:
        Tensor: ``[steps * points * channels * nbins]`` long indices.
    """
    release = torch.arange(steps * points * channels * nbins).reshape(
        channels * nbins, steps * points)
    return release.t().reshape(-1)


@dataclass(frozen=True)
class HOGLayout:
    """HOG head rows: ``steps x cells x channels x nbins``, this project's
    order (step, cell row, cell column, channel, bin)."""
    mode: str
    steps: int
    cells: int
    channels: int
    nbins: int

    @property
    def rows(self) -> int:
        return self.steps * self.cells * self.channels * self.nbins

    def describe(self) -> str:
        colour = {n: c for c, n in HOG_CHANNELS.items()}.get(
            self.channels, 'channels')
        return (f'{self.mode} HOG, {self.steps} step(s) x {self.cells} cells x'
                f' {self.channels} channel(s) ({colour}) x {self.nbins} bins'
                f' = {self.rows} rows')

    def official_problem(self) -> Optional[str]:
        """Why the official HOG head cannot hold this (None: it can)."""
        why = []
        if self.mode != 'static' or self.steps != 1:
            why.append('it holds one static HOG per token, not one per '
                       'trajectory step')
        if self.channels != OFFICIAL_HOG_CHANNELS:
            why.append(f'it has {OFFICIAL_HOG_CHANNELS} colour channels, '
                       f'not {self.channels}')
        if self.nbins != OFFICIAL_HOG_BINS:
            why.append(f'it has {OFFICIAL_HOG_BINS} bins, not {self.nbins}')
        if not why:
            return None
        return (f'the official HOG head ({OFFICIAL_HOG_CHANNELS} channels x'
                f' {OFFICIAL_HOG_BINS} bins per cell, static; release spec '
                f'2.7) cannot hold {self.describe()}: '
                + '; '.join(why))

    def permutation(self) -> torch.Tensor:
        """``ours = release[perm]`` (:func:`hog_head_permutation`)."""
        return hog_head_permutation(self.cells, self.channels, self.nbins,
                                    self.steps)


@dataclass(frozen=True)
class TrajLayout:
    """Trajectory head rows: ``2 x traj_len x points`` (coordinate, step,
    point), the release's order too."""
    traj_len: int
    points: int

    @property
    def rows(self) -> int:
        return TRAJ_COORDS * self.traj_len * self.points

    def describe(self) -> str:
        return (f'trajectories, {TRAJ_COORDS} coords x {self.traj_len} '
                f'steps x '
                f'{self.points} points = {self.rows} rows')

    def official_problem(self) -> Optional[str]:
        if self.points == OFFICIAL_TRAJ_POINTS:
            return None
        return (f'the official trajectory head is {TRAJ_COORDS} x L x '
                f'{OFFICIAL_TRAJ_POINTS} points (traj_dim = traj_len * '
                f'{TRAJ_COORDS} * {OFFICIAL_TRAJ_POINTS}, release spec 2.6), '
                'not ' + self.describe())


@dataclass(frozen=True)
class PixelLayout:
    """Pixel head rows: ``tubelet x patch x patch x channels`` (frame, row,
    column, channel), VideoMAE's order too."""
    tubelet: int
    patch: int
    channels: int

    @property
    def rows(self) -> int:
        return self.tubelet * self.patch**2 * self.channels

    def describe(self) -> str:
        return (f'pixels, {self.tubelet} frames x {self.patch} x {self.patch}'
                f' x {self.channels} channels = {self.rows} rows')

    def official_problem(self) -> Optional[str]:
        return None


Detail = Union[HOGLayout, TrajLayout, PixelLayout]
_KIND_OF = {HOGLayout: 'hog', TrajLayout: 'traj', PixelLayout: 'pixel'}


@dataclass(frozen=True)
class HeadLayout:
    """One decoder head: its name (``decoder.heads.<name>``), what it
    predicts (``hog``, ``traj``, ``pixel`` or ``other``), rows, and their
    layout (None: unknown)."""
    name: str
    kind: str
    rows: int
    detail: Optional[Detail] = None

    def describe(self) -> str:
        what = self.detail.describe() if self.detail is not None else \
            f'{self.rows} rows (layout unknown)'
        return f'{self.name}: {what}'


@dataclass
class CheckpointLayout:
    """Layout of a pretraining checkpoint's decoder heads and geometry.

    Args:
        heads (list[HeadLayout]): The heads, in the model's order.
        head_hidden (int): Hidden width of the MLP heads; 0 = one Linear.
        patch_size (int): Spatial patch size of the encoder.
        tubelet_size (int): Temporal patch size of the encoder.
        source (str): Where the layout came from (config path, shapes,
            metadata), for messages.
    """
    heads: List[HeadLayout]
    head_hidden: int
    patch_size: int
    tubelet_size: int
    source: str = 'unknown'

    def head(self, kind: str) -> Optional[HeadLayout]:
        """The head predicting ``kind`` (None if there is none)."""
        for h in self.heads:
            if h.kind == kind:
                return h
        return None

    def describe(self) -> str:
        return (f'{"; ".join(h.describe() for h in self.heads)}; head hidden'
                f' width {self.head_hidden or "none (one Linear)"}; patch '
                f'{self.patch_size}, tubelet {self.tubelet_size} (from '
                f'{self.source})')

    def to_meta(self) -> Dict:
        """Plain values (safe to unpickle) for :data:`LAYOUT_KEY`."""
        heads = []
        for h in self.heads:
            entry = dict(name=h.name, kind=h.kind, rows=h.rows)
            if h.detail is not None:
                entry['detail'] = dict(vars(h.detail))
            heads.append(entry)
        return dict(version=LAYOUT_VERSION, heads=heads,
                    head_hidden=self.head_hidden, patch_size=self.patch_size,
                    tubelet_size=self.tubelet_size, source=self.source)

    @classmethod
    def from_meta(cls, meta: Dict, where: str = 'metadata'
                  ) -> 'CheckpointLayout':
        """Inverse of :meth:`to_meta`.

        Raises:
            CheckpointMismatchError: On an unknown version or a malformed
                entry.
        """
        version = meta.get('version') if isinstance(meta, dict) else meta
        if version != LAYOUT_VERSION:
            raise _error(f'{where}: {LAYOUT_KEY} of unknown version '
                         f'{version!r} (this project writes version '
                         f'{LAYOUT_VERSION})')
        try:
            heads = []
            for h in meta['heads']:
                detail = None
                if 'detail' in h:
                    kind_cls = {v: k for k, v in _KIND_OF.items()}[h['kind']]
                    detail = kind_cls(**h['detail'])
                heads.append(HeadLayout(h['name'], h['kind'], int(h['rows']),
                                        detail))
            return cls(heads, int(meta['head_hidden']),
                       int(meta['patch_size']), int(meta['tubelet_size']),
                       f"{where} ({meta.get('source', '?')})")
        except (KeyError, TypeError, ValueError) as e:
            raise _error(f'{where}: malformed {LAYOUT_KEY} ({e!r})') from None


def _square_cells(patch: int, spacing: int, what: str) -> int:
    if spacing <= 0 or patch % spacing:
        raise _error(f'patch size {patch} is not a multiple of the {what} '
                     f'{spacing}')
    return (patch // spacing)**2


def layout_from_model(model, source: str = 'model') -> CheckpointLayout:
    """The layout of an :class:`~mme_plugin.models.MME` model, from its
    targets' settings and its backbone and decoder.

    Args:
        model (MME): A built pretraining model.
        source (str): Name for messages (e.g. the config path).

    Returns:
        CheckpointLayout: Its heads' layouts.

    Raises:
        CheckpointMismatchError: If a target's ``feat_dim`` override
            disagrees with its settings (the rows' meaning is then unknown).
    """
    from mme_plugin.models.targets import (HOGTarget, PixelTarget,
                                           TrajectoryTarget)
    bb = model.backbone
    patch = int(bb.patch_size)
    tubelet = int(getattr(bb, 'tubelet_size', DEFAULT_TUBELET))
    heads = []
    for name, unit in model.targets.items():
        detail: Optional[Detail] = None
        kind = 'other'
        if isinstance(unit, HOGTarget):
            kind = 'hog'
            steps = unit.traj_len + 1 if unit.mode == 'trajectory' else 1
            detail = HOGLayout(
                unit.mode, steps,
                _square_cells(patch, unit.cell_size, 'HOG cell size'),
                HOG_CHANNELS['rgb'] if unit.channels == 'rgb' else
                HOG_CHANNELS['gray'], unit.nbins)
        elif isinstance(unit, TrajectoryTarget):
            kind = 'traj'
            detail = TrajLayout(unit.traj_len, _square_cells(
                patch, unit.grid_step, 'trajectory grid step'))
        elif isinstance(unit, PixelTarget):
            kind = 'pixel'
            detail = PixelLayout(tubelet, patch, PIXEL_CHANNELS)
        rows = int(unit.feat_dim)
        if detail is not None and detail.rows != rows:
            raise _error(
                f'{source}: target {name!r} declares feat_dim={rows}, but its'
                f' settings give {detail.describe()}: the meaning of its '
                'head rows is unknown. Drop feat_dim (it is derived) or fix '
                'the target settings')
        heads.append(HeadLayout(name, kind, rows, detail))
    first = next(iter(model.decoder.heads.values()))
    # an MLP head (Linear, GELU, Linear) has a hidden width, a Linear none
    hidden = first[0].out_features if len(first) > 2 else 0
    return CheckpointLayout(heads, int(hidden), patch, tubelet, source)


def layout_from_config(config) -> Tuple[Optional[CheckpointLayout], object]:
    """Build the model of ``config`` and derive its layout.

    Args:
        config (str | Config): A config path or object.

    Returns:
        tuple: The layout (None unless the model is an
        :class:`~mme_plugin.models.MME`) and the built model.
    """
    from mmengine.config import Config

    from mme_plugin.registry import MODELS
    from mme_plugin.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    model = MODELS.build(cfg.model)
    name = config if isinstance(config, str) else 'the config'
    if not hasattr(model, 'targets') or not hasattr(model, 'decoder'):
        return None, model
    return layout_from_model(model, f'config {name}'), model


def head_linear_indices(state: Dict[str, torch.Tensor],
                        prefix: str) -> List[int]:
    """Indices ``i`` of the Linear layers ``<prefix><i>.weight`` of a
    ``Sequential`` head, sorted (the last is the output layer)."""
    pat = re.compile(re.escape(prefix) + r'(\d+)\.weight$')
    return sorted(int(m.group(1)) for m in map(pat.match, state) if m)


def _state_heads(state: Dict[str, torch.Tensor]
                 ) -> Tuple[Dict[str, int], int]:
    """Head name -> output rows, and the hidden width, from the keys."""
    names: List[str] = []
    for k in state:
        m = re.match(r'^decoder\.heads\.([^.]+)\.', k)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    rows, hiddens = {}, set()
    for name in names:
        idx = head_linear_indices(state, f'decoder.heads.{name}.')
        if not idx:
            raise _error(f'decoder.heads.{name} has no Linear weights')
        rows[name] = int(state[f'decoder.heads.{name}.{idx[-1]}.weight']
                         .shape[0])
        hiddens.add(int(state[f'decoder.heads.{name}.{idx[0]}.weight']
                        .shape[0]) if len(idx) > 1 else 0)
    if len(hiddens) > 1:
        raise _error(f'decoder heads {names} have different hidden widths '
                     f'{sorted(hiddens)}; MMEDecoder has one head_hidden')
    return rows, hiddens.pop() if hiddens else 0


def _patch_geometry(state: Dict[str, torch.Tensor]) -> Tuple[int, int, int]:
    """Patch size, tubelet size and input channels, from the Conv3d patch
    embedding's ``[out, in, tubelet, patch, patch]`` weight."""
    w = state.get('backbone.patch_embed.projection.weight')
    if w is None or w.dim() != 5:
        raise _error('no 5-D backbone.patch_embed.projection.weight to read '
                     'the patch geometry from: pass --config <the '
                     'pretraining config>')
    _, in_ch, tubelet, patch, _ = (int(d) for d in w.shape)
    return patch, tubelet, in_ch


def infer_layout(state: Dict[str, torch.Tensor]) -> CheckpointLayout:
    """Infer the heads' layout of this project's pretraining state dict from
    the tensor shapes alone, under :data:`INFERENCE_ASSUMPTIONS`.

    Args:
        state (dict): ``backbone.*`` / ``decoder.*`` state dict of
            :class:`~mme_plugin.models.MME`.

    Returns:
        CheckpointLayout: The only layout the shapes allow.

    Raises:
        CheckpointMismatchError: When no layout or several fit, naming them
            and what to pass (the pretraining config).
    """
    patch, tubelet, in_ch = _patch_geometry(state)
    rows, hidden = _state_heads(state)
    kinds = {n: n if n in ('hog', 'traj', 'pixel') else 'other'
             for n in rows}
    hog_rows = next((rows[n] for n in rows if kinds[n] == 'hog'), None)
    traj_rows = next((rows[n] for n in rows if kinds[n] == 'traj'), None)
    combos: List[Tuple[Optional[HOGLayout], Optional[TrajLayout]]] = []
    if hog_rows is not None or traj_rows is not None:
        for k in (k for k in range(1, patch + 1) if patch % k == 0):
            cells = k * k
            traj = None
            if traj_rows is not None:
                if traj_rows % (TRAJ_COORDS * cells):
                    continue
                traj = TrajLayout(traj_rows // (TRAJ_COORDS * cells), cells)
            if hog_rows is None:
                combos.append((None, traj))
                continue
            for channels in (HOG_CHANNELS['rgb'], HOG_CHANNELS['gray']):
                per_step = cells * channels * OFFICIAL_HOG_BINS
                if hog_rows % per_step:
                    continue
                steps = hog_rows // per_step
                if steps == 1:
                    combos.append((HOGLayout('static', 1, cells, channels,
                                             OFFICIAL_HOG_BINS), traj))
                elif traj is None or steps == traj.traj_len + 1:
                    combos.append((HOGLayout('trajectory', steps, cells,
                                             channels, OFFICIAL_HOG_BINS),
                                   traj))
    if len(combos) != 1 and (hog_rows is not None or traj_rows is not None):
        shapes = ', '.join(f'{n} {r} rows' for n, r in rows.items())
        options = ' | '.join(
            ' and '.join(x.describe() for x in c if x is not None)
            for c in combos) or 'none'
        raise _error(
            f'cannot tell the layout of the decoder heads from the tensor '
            f'shapes ({shapes}; patch {patch}): '
            f'{"several" if combos else "no"} layouts fit ({options}) under '
            f'the inference assumptions ({INFERENCE_ASSUMPTIONS}). Pass '
            '--config <the pretraining config> (layout_from_config) to say '
            'which')
    hog, traj = combos[0] if combos else (None, None)
    heads = []
    for name, r in rows.items():
        detail = {'hog': hog, 'traj': traj}.get(kinds[name])
        if kinds[name] == 'pixel' and r == tubelet * patch**2 * in_ch:
            detail = PixelLayout(tubelet, patch, in_ch)
        heads.append(HeadLayout(name, kinds[name], r, detail))
    return CheckpointLayout(heads, hidden, patch, tubelet,
                            'tensor shapes, assuming ' +
                            INFERENCE_ASSUMPTIONS)


def check_layout_fits(layout: CheckpointLayout,
                      state: Dict[str, torch.Tensor]) -> None:
    """Check that ``layout`` describes ``state``'s heads and patches.

    Raises:
        CheckpointMismatchError: Naming each disagreement.
    """
    rows, hidden = _state_heads(state)
    patch, tubelet, _ = _patch_geometry(state)
    bad = []
    want = {h.name: h.rows for h in layout.heads}
    if want != rows:
        bad.append(f'heads {rows} in the checkpoint vs {want}')
    if hidden != layout.head_hidden:
        bad.append(f'head hidden width {hidden} vs {layout.head_hidden}')
    if (patch, tubelet) != (layout.patch_size, layout.tubelet_size):
        bad.append(f'patch/tubelet {patch}/{tubelet} vs '
                   f'{layout.patch_size}/{layout.tubelet_size}')
    if bad:
        raise _error(f'the layout from {layout.source} does not fit the '
                     f'checkpoint: {"; ".join(bad)}. Pass the config the '
                     'checkpoint was pretrained with')


def official_problems(layout: CheckpointLayout) -> List[str]:
    """Why the official pretraining models cannot load heads of this
    layout with ``strict=True`` (empty: they can).

    Args:
        layout (CheckpointLayout): This project's layout.

    Returns:
        list[str]: One reason per problem.
    """
    kinds = [h.kind for h in layout.heads]
    problems = []
    if kinds == ['pixel']:
        if layout.head_hidden:
            problems.append(
                "VideoMAE's pixel head is one Linear; this one is an MLP "
                f'(head_hidden={layout.head_hidden})')
        if layout.heads[0].detail is None:
            problems.append('the pixel head has '
                            f'{layout.heads[0].rows} rows, not tubelet x '
                            'patch^2 x channels')
        return problems
    if sorted(kinds) not in (sorted(OFFICIAL_MME_HEADS), ['hog']):
        return [f'heads {[h.name for h in layout.heads]} (predicting '
                f'{kinds}): the official MME model has a HOG and a '
                'trajectory head (target idt) or a HOG head (target hog), '
                'VideoMAE one pixel head']
    if not layout.head_hidden:
        problems.append("the release's heads are MLPs (Linear, GELU, "
                        'Linear); these are single Linears (head_hidden=0)')
    for h in layout.heads:
        if h.detail is None:
            problems.append(f'{h.name}: layout unknown')
            continue
        why = h.detail.official_problem()
        if why:
            problems.append(f'{h.name}: {why}')
    return problems


def official_head_layout(kind: str, rows: int, patch: int,
                         where: str) -> HeadLayout:
    """The layout of an official head (release facts, module docstring).

    Args:
        kind (str): ``'hog'``, ``'traj'`` or ``'pixel'``.
        rows (int): Its output rows.
        patch (int): Patch size of the encoder (for the cell count).
        where (str): Key, for messages.

    Raises:
        CheckpointMismatchError: If ``rows`` is not of the official layout.
    """
    if kind == 'hog':
        per_cell = OFFICIAL_HOG_CHANNELS * OFFICIAL_HOG_BINS
        cells = rows // per_cell
        k = round(cells**0.5)
        if rows % per_cell or k * k != cells or patch % k:
            raise _error(
                f'{where} has {rows} rows, which is not the official HOG '
                f'layout ({OFFICIAL_HOG_CHANNELS} channels x '
                f'{OFFICIAL_HOG_BINS} bins = {per_cell} rows per cell, a '
                f'square number of cells tiling the {patch}-px patch; '
                'release spec 2.7). If the file was written by --reverse '
                f'--preserve-layout, its {LAYOUT_KEY} metadata is missing: '
                'convert the file that has it')
        return HeadLayout('hog', 'hog', rows, HOGLayout(
            'static', 1, cells, OFFICIAL_HOG_CHANNELS, OFFICIAL_HOG_BINS))
    if kind == 'traj':
        per_step = TRAJ_COORDS * OFFICIAL_TRAJ_POINTS
        if rows % per_step:
            raise _error(f'{where} has {rows} rows, not the official '
                         f'{TRAJ_COORDS} x L x {OFFICIAL_TRAJ_POINTS} points '
                         '(release spec 2.6)')
        return HeadLayout('traj', 'traj', rows,
                          TrajLayout(rows // per_step, OFFICIAL_TRAJ_POINTS))
    return HeadLayout(kind, kind, rows)
