"""Pictures as PNG: piano rolls, match explanations and window-score timelines.

Pure functions from notes (beats) to a :class:`Picture`: PNG bytes and the pixel geometry of the piano roll
in it. Pitch goes upward with note names on the axis, beats go along x with bar lines. Drawing goes through
matplotlib's Agg canvas directly (no pyplot, no global state, no display), and matplotlib is imported only
when a picture is drawn, so ``import rollmatch`` stays light. A picture grows with its music up to fixed
caps, so a very long piece gives a dense picture, never a gigantic one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import defaults
from .bars import Bars, regular_bars
from .explanation import Explanation, Placed, alignment_text, coverage_text, similarity_text
from .notes import pitch_name
from .verdict import Label, Outcome, Thresholds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .scoring import FileResult

DPI = 100
#: Size of the piano roll's plot area: this many pixels per beat and per semitone, within the caps below.
PIXELS_PER_BEAT = 24.0
PIXELS_PER_SEMITONE = 9.0
MIN_ROLL_WIDTH_PX, MAX_ROLL_WIDTH_PX = 480, 3200
MIN_ROLL_HEIGHT_PX, MAX_ROLL_HEIGHT_PX = 160, 900
#: Semitones shown below the lowest and above the highest note.
PITCH_MARGIN = 2
#: Space around the plot areas, in pixels: note names on the left, title and bar numbers on top, beats below.
MARGIN_LEFT_PX, MARGIN_RIGHT_PX, MARGIN_TOP_PX, MARGIN_BOTTOM_PX = 64, 24, 44, 40
#: Height of one legend line below an explanation's roll.
LEGEND_LINE_PX = 18
#: Right margin of a timeline, where its panels name the verdicts.
TIMELINE_MARGIN_RIGHT_PX = 84
#: Height of each timeline panel under the roll, and the gap above it (room for a legend of two rows).
PANEL_HEIGHT_PX, PANEL_GAP_PX = 110, 40
#: Labels and grid lines closer than these are thinned out, so that a long piece stays legible.
MIN_PITCH_LABEL_SPACING_PX = 11.0
MIN_BAR_LABEL_SPACING_PX = 24.0
MIN_BEAT_LINE_SPACING_PX = 8.0
#: A zero-length note is drawn one roll step long, as the engine renders it.
MIN_NOTE_BEATS = 1.0 / defaults.STEPS_PER_BEAT
#: Half the height of a note's bar, in semitones.
NOTE_HALF_HEIGHT = 0.42

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
NOTE_COLOUR = "#0072B2"
NOTE_EDGE_COLOUR = "#004B75"
GOOD_COLOUR = "#009E73"
BAD_COLOUR = "#D55E00"
UNMATCHED_COLOUR = "#8C8C8C"
#: The best good match's coverage in a timeline.
COVERAGE_COLOUR = "#CC79A7"
OUTCOME_COLOURS = {Outcome.GOOD: GOOD_COLOUR, Outcome.UNMATCHED: UNMATCHED_COLOUR, Outcome.VETOED: BAD_COLOUR}
BLACK_KEY_SHADE = "#EFEFEF"
BAR_LINE_COLOUR = "#555555"
BEAT_LINE_COLOUR = "#DDDDDD"
_BLACK_KEYS = frozenset((1, 3, 6, 8, 10))


@dataclass(frozen=True)
class Plot:
    """One plot area of a picture: its ``box`` in pixels (left, top, right, bottom, from the image's top-left)
    and the data values at its edges, ``x`` (left, right) and ``y`` (bottom, top)."""

    box: tuple[float, float, float, float]
    x: tuple[float, float]
    y: tuple[float, float]

    def pixel(self, x: float, y: float) -> tuple[int, int]:
        """The (column, row) of the pixel showing data point (x, y)."""
        left, top, right, bottom = self.box
        column = left + (x - self.x[0]) / (self.x[1] - self.x[0]) * (right - left)
        row = bottom - (y - self.y[0]) / (self.y[1] - self.y[0]) * (bottom - top)
        return int(column), int(row)


@dataclass(frozen=True)
class Picture:
    """A drawn PNG of ``width`` x ``height`` pixels and its plot areas by name: always ``roll`` (beats by
    pitch in semitones); a timeline adds ``score`` and ``similarity`` (beats by value)."""

    png: bytes
    width: int
    height: int
    plots: dict[str, Plot]

    def pixel(self, beat: float, pitch: float) -> tuple[int, int]:
        """The (column, row) pixel where ``beat`` meets the middle of ``pitch``'s row in the roll."""
        return self.plots["roll"].pixel(beat, pitch)


def roll_picture(
    notes: np.ndarray,
    *,
    bars: Bars | None = None,
    beats_per_bar: float = defaults.BEATS_PER_BAR,
    title: str = "",
) -> Picture:
    """A piano roll of ``notes`` (beats) from beat 0 to the last note's end, with ``bars`` (default: regular
    bars of ``beats_per_bar``)."""
    beats, pitches = _extent([notes])
    bars = bars if bars is not None else regular_bars(beats_per_bar, beats[1])
    width, roll_height = _roll_size(beats, pitches)
    figure, roll = _figure(width, roll_height, below_px=MARGIN_BOTTOM_PX, title=title)
    _draw_roll(roll, notes, beats, pitches, bars)
    return _finish(figure, roll=roll)


def explanation_picture(explanation: Explanation) -> Picture:
    """The fragment's roll with its best good and best bad exemplar drawn over it as outlines, each where it
    matched (transposed, stretched and shifted), and a legend naming each with its alignment and similarity.
    Outlines leave the fragment's own notes visible inside them; the bad one is dashed where both coincide."""
    placed = [p for p in (explanation.good, explanation.bad) if p is not None]
    beats, pitches = _extent([explanation.fragment, *(p.notes for p in placed)])
    bars = explanation.bars
    width, roll_height = _roll_size(beats, pitches)
    legend_px = 7 * LEGEND_LINE_PX + 12  # the fragment, then three lines for each exemplar
    verdict = explanation.verdict
    title = f"{explanation.name}: {verdict.outcome.value}, score {verdict.score:.3f}"
    figure, roll = _figure(width, roll_height, below_px=MARGIN_BOTTOM_PX + legend_px, title=title)
    _draw_roll(roll, explanation.fragment, beats, pitches, bars)

    from matplotlib.patches import Patch  # noqa: PLC0415  (matplotlib loads slowly: only when a picture is drawn)

    handles = [Patch(facecolor=NOTE_COLOUR, edgecolor=NOTE_EDGE_COLOUR, label=f"fragment: {explanation.name}")]
    styles: tuple[tuple[Label, Placed | None, str, Literal["-", "--"]], ...] = (
        (Label.GOOD, explanation.good, GOOD_COLOUR, "-"),
        (Label.BAD, explanation.bad, BAD_COLOUR, "--"),
    )
    for label, found, colour, style in styles:
        if found is None:
            handles.append(
                Patch(facecolor="none", edgecolor=colour, linestyle=style, label=f"best {label.value}: none")
            )
            continue
        roll.add_collection(
            _rectangles(found.notes, facecolor="none", edgecolor=colour, linewidth=2.0, linestyle=style, zorder=4)
        )
        label_text = (
            f"best {found.label.value}: {found.match.exemplar} ({found.mode.value}) at {alignment_text(found.match)}\n"
            f"{similarity_text(found)}\n{coverage_text(found)}"
        )
        handles.append(Patch(facecolor="none", edgecolor=colour, linestyle=style, linewidth=2.0, label=label_text))
    figure.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(MARGIN_LEFT_PX / figure.bbox.width, 4 / figure.bbox.height),
        frameon=False,
        fontsize=8,
        handlelength=2.2,
        borderaxespad=0,
    )
    return _finish(figure, roll=roll)


def timeline_picture(
    notes: np.ndarray,
    windows: Sequence[FileResult],
    *,
    thresholds: Thresholds,
    bars: Bars | None = None,
    title: str = "",
) -> Picture:
    """A piece's roll with, under it, each window's score coloured by its verdict, and the similarity of
    its best good and best bad match against the library's thresholds, with the best good match's coverage
    against the coverage GOOD needs.

    ``windows`` are the per-window results of :func:`rollmatch.score_files` (start_beat and end_beat set);
    each is drawn over the middle of its window, one hop wide, so overlapping windows tile the time axis.
    """
    scored = [
        (w.start_beat, w.end_beat, w.verdict)
        for w in windows
        if w.verdict is not None and w.start_beat is not None and w.end_beat is not None
    ]
    beats, pitches = _extent([notes])
    beats = (beats[0], max([beats[1], *(end for _, end, _ in scored)]))
    bars = bars if bars is not None else regular_bars(defaults.BEATS_PER_BAR, beats[1])
    width, roll_height = _roll_size(beats, pitches)
    panels_px = 2 * (PANEL_HEIGHT_PX + PANEL_GAP_PX)
    figure, roll = _figure(
        width, roll_height, below_px=MARGIN_BOTTOM_PX + panels_px, title=title, right_px=TIMELINE_MARGIN_RIGHT_PX
    )
    _draw_roll(roll, notes, beats, pitches, bars)
    roll.set_xlabel("")
    score_axes = _panel(figure, roll, 0)
    similarity_axes = _panel(figure, roll, 1)

    starts = np.array([start for start, _, _ in scored], dtype=np.float64)
    lengths = np.array([end - start for start, end, _ in scored], dtype=np.float64)
    hop = float(np.min(np.diff(starts))) if starts.size > 1 else float(lengths[0]) if starts.size else 1.0
    width_beats = np.minimum(lengths, hop)
    left = starts + (lengths - width_beats) / 2
    right = left + width_beats
    verdicts = [verdict for _, _, verdict in scored]

    for low, high, outcome in ((1.0, 2.0, Outcome.GOOD), (0.0, 1.0, Outcome.UNMATCHED), (-1.0, 0.0, Outcome.VETOED)):
        score_axes.axhspan(low, high, color=OUTCOME_COLOURS[outcome], alpha=0.10, linewidth=0, zorder=0)
        score_axes.text(
            1.002,
            (low + high) / 2,
            outcome.value,
            transform=score_axes.get_yaxis_transform(),
            fontsize=7,
            va="center",
            ha="left",
            color=OUTCOME_COLOURS[outcome],
        )
    scores = np.array([v.score for v in verdicts])
    score_axes.hlines(
        scores, left, right, colors=[OUTCOME_COLOURS[v.outcome] for v in verdicts], linewidth=3.0, zorder=3
    )
    score_axes.set_ylim(-1.05, 2.05)
    score_axes.set_yticks([-1, 0, 1, 2])
    score_axes.set_ylabel("score", fontsize=8)
    score_axes.tick_params(axis="x", labelbottom=False)

    good = np.array([v.good.similarity if v.good else 0.0 for v in verdicts])
    bad = np.array([v.bad.similarity if v.bad else 0.0 for v in verdicts])
    similarity_axes.hlines(good, left, right, colors=GOOD_COLOUR, linewidth=2.0, zorder=3, label="best good")
    similarity_axes.hlines(bad, left, right, colors=BAD_COLOUR, linewidth=2.0, zorder=3, label="best bad")
    similarity_axes.axhline(
        thresholds.good, color=GOOD_COLOUR, linestyle="--", linewidth=1.0, label=f"good threshold {thresholds.good:g}"
    )
    similarity_axes.axhline(
        thresholds.bad, color=BAD_COLOUR, linestyle=":", linewidth=1.2, label=f"bad threshold {thresholds.bad:g}"
    )
    coverage = np.array([v.good.coverage if v.good else 0.0 for v in verdicts])
    # Dashed and on top, so that a similarity of the same value shows through it.
    similarity_axes.hlines(
        coverage,
        left,
        right,
        colors=COVERAGE_COLOUR,
        linewidth=2.0,
        linestyles=(0, (3, 1.5)),
        zorder=4,
        label="best good's coverage",
    )
    similarity_axes.axhline(
        thresholds.min_coverage,
        color=COVERAGE_COLOUR,
        linestyle="-.",
        linewidth=0.8,
        label=f"coverage needed {thresholds.min_coverage:g}",
    )
    similarity_axes.set_ylim(0, 1.02)
    similarity_axes.set_ylabel("similarity,\ncoverage", fontsize=8)
    similarity_axes.set_xlabel("beats", fontsize=8)
    similarity_axes.legend(
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=3,
        fontsize=7,
        frameon=False,
        borderaxespad=0.1,
        handlelength=1.6,
        labelspacing=0.2,
        columnspacing=1.2,
    )
    return _finish(figure, roll=roll, score=score_axes, similarity=similarity_axes)


# --- layout and drawing -----------------------------------------------------------------------------------


def _extent(note_sets: Sequence[np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]]:
    """The beats (left, right) and pitch edges (bottom, top) that hold every note of every set."""
    present = [n for n in note_sets if n.size]
    if not present:
        return (0.0, defaults.BEATS_PER_BAR), (60 - 6.5, 60 + 6.5)
    low = min(float(n["start"].min()) for n in present)
    high = max(float(np.maximum(n["end"], n["start"] + MIN_NOTE_BEATS).max()) for n in present)
    bottom = min(int(n["pitch"].min()) for n in present) - PITCH_MARGIN
    top = max(int(n["pitch"].max()) for n in present) + PITCH_MARGIN
    return (min(0.0, low), high), (bottom - 0.5, top + 0.5)


def _roll_size(beats: tuple[float, float], pitches: tuple[float, float]) -> tuple[int, int]:
    width = np.clip((beats[1] - beats[0]) * PIXELS_PER_BEAT, MIN_ROLL_WIDTH_PX, MAX_ROLL_WIDTH_PX)
    height = np.clip((pitches[1] - pitches[0]) * PIXELS_PER_SEMITONE, MIN_ROLL_HEIGHT_PX, MAX_ROLL_HEIGHT_PX)
    return int(width), int(height)


def _figure(
    roll_width: int, roll_height: int, *, below_px: int, title: str, right_px: int = MARGIN_RIGHT_PX
) -> tuple[Figure, Axes]:
    """A figure with the roll's plot area placed to the pixel, ``below_px`` and ``right_px`` left free."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415  (matplotlib loads slowly: only when a picture is drawn)
    from matplotlib.figure import Figure  # noqa: PLC0415  (matplotlib loads slowly: only when a picture is drawn)

    width = MARGIN_LEFT_PX + roll_width + right_px
    height = MARGIN_TOP_PX + roll_height + below_px
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(figure)
    roll = figure.add_axes((MARGIN_LEFT_PX / width, below_px / height, roll_width / width, roll_height / height))
    if title:
        figure.text(MARGIN_LEFT_PX / width, 1 - 6 / height, title, fontsize=9, va="top", ha="left")
    return figure, roll


def _panel(figure: Figure, roll: Axes, index: int) -> Axes:
    """The ``index``-th panel under the roll, as wide as it and sharing its beats."""
    height = figure.bbox.height
    left, bottom, roll_width, _ = roll.get_position().bounds
    top = bottom * height - PANEL_GAP_PX - index * (PANEL_HEIGHT_PX + PANEL_GAP_PX)
    axes = figure.add_axes((left, (top - PANEL_HEIGHT_PX) / height, roll_width, PANEL_HEIGHT_PX / height), sharex=roll)
    axes.tick_params(labelsize=7)
    return axes


def _draw_roll(
    axes: Axes, notes: np.ndarray, beats: tuple[float, float], pitches: tuple[float, float], bars: Bars
) -> None:
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415  (matplotlib loads slowly: only when a picture is drawn)

    axes.set_xlim(*beats)
    axes.set_ylim(*pitches)
    width_px, height_px = _axes_pixels(axes)
    per_beat = width_px / (beats[1] - beats[0])
    per_semitone = height_px / (pitches[1] - pitches[0])
    rows = _pitch_rows(pitches)
    for pitch in rows[np.isin(rows % 12, list(_BLACK_KEYS))]:
        axes.axhspan(pitch - 0.5, pitch + 0.5, color=BLACK_KEY_SHADE, linewidth=0, zorder=0)
    if per_beat >= MIN_BEAT_LINE_SPACING_PX:
        axes.vlines(np.arange(np.ceil(beats[0]), beats[1]), *pitches, colors=BEAT_LINE_COLOUR, linewidth=0.5, zorder=1)
    shown = (bars.starts >= beats[0]) & (bars.starts <= beats[1])
    axes.vlines(bars.starts[shown], *pitches, colors=BAR_LINE_COLOUR, linewidth=0.9, zorder=2)
    _bar_numbers(axes, bars.starts[shown], bars.numbers[shown], per_beat)

    edge = per_beat >= 2 * MIN_BEAT_LINE_SPACING_PX
    axes.add_collection(
        _rectangles(
            notes,
            facecolor=NOTE_COLOUR,
            edgecolor=NOTE_EDGE_COLOUR if edge else NOTE_COLOUR,
            linewidth=0.6 if edge else 0.0,
            zorder=3,
        )
    )

    labelled = pitch_ticks(pitches, per_semitone)
    axes.set_yticks(labelled, [pitch_name(p) for p in labelled], fontsize=7)
    axes.xaxis.set_major_locator(MaxNLocator(nbins=max(2, int(width_px // 60)), integer=True))
    axes.tick_params(axis="x", labelsize=7)
    axes.set_xlabel("beats", fontsize=8)


def pitch_ticks(pitches: tuple[float, float], pixels_per_semitone: float) -> np.ndarray:
    """The pitches to name on the axis between ``pitches`` (bottom, top edge): every semitone when there is
    room, else every 2nd, 3rd, 4th, 6th or 12th, always including the Cs."""
    rows = _pitch_rows(pitches)
    interval = next(i for i in (1, 2, 3, 4, 6, 12) if i * pixels_per_semitone >= MIN_PITCH_LABEL_SPACING_PX or i == 12)
    return rows[rows % interval == 0]


def _pitch_rows(pitches: tuple[float, float]) -> np.ndarray:
    """Every whole pitch between the bottom and top edges."""
    return np.arange(int(np.ceil(pitches[0])), int(np.floor(pitches[1])) + 1)


def _bar_numbers(axes: Axes, starts: np.ndarray, numbers: np.ndarray, per_beat: float) -> None:
    """Bar numbers above the roll; only every n-th where bars are too narrow to label them all."""
    if starts.size == 0:
        return
    narrowest = float(np.min(np.diff(starts))) * per_beat if starts.size > 1 else np.inf
    every = max(1, int(np.ceil(MIN_BAR_LABEL_SPACING_PX / narrowest))) if narrowest > 0 else 1
    transform = axes.get_xaxis_transform()
    for beat, label in zip(starts[::every], numbers[::every], strict=True):
        axes.text(
            beat, 1.01, str(label), transform=transform, fontsize=7, va="bottom", ha="left", color=BAR_LINE_COLOUR
        )


def _rectangles(notes: np.ndarray, **style: Any) -> Any:
    """One collection holding a rectangle per note: [start, end) by pitch ± NOTE_HALF_HEIGHT."""
    from matplotlib.collections import PolyCollection  # noqa: PLC0415  (matplotlib loads slowly: only when a picture is drawn)

    x0 = notes["start"].astype(np.float64)
    x1 = np.maximum(notes["end"], x0 + MIN_NOTE_BEATS)
    y0 = notes["pitch"] - NOTE_HALF_HEIGHT
    y1 = notes["pitch"] + NOTE_HALF_HEIGHT
    corners = np.stack(
        [np.stack([x0, y0], -1), np.stack([x0, y1], -1), np.stack([x1, y1], -1), np.stack([x1, y0], -1)], axis=1
    )
    # an (n, 4, 2) array is what PolyCollection takes fastest
    return PolyCollection(corners, closed=True, **style)  # type: ignore[arg-type]  # its stubs name sequences only


def _axes_pixels(axes: Axes) -> tuple[float, float]:
    figure = axes.get_figure()
    _, _, width, height = axes.get_position().bounds
    # an axes made by this module always has its figure
    return width * figure.bbox.width, height * figure.bbox.height  # type: ignore[union-attr]  # see above


def _finish(figure: Figure, **plots: Axes) -> Picture:
    buffer = io.BytesIO()
    figure.canvas.print_png(buffer)  # type: ignore[attr-defined]
    width, height = round(figure.bbox.width), round(figure.bbox.height)
    areas = {}
    for name, axes in plots.items():
        left, bottom, w, h = axes.get_position().bounds
        box = (left * width, (1 - bottom - h) * height, (left + w) * width, (1 - bottom) * height)
        areas[name] = Plot(box, axes.get_xlim(), axes.get_ylim())
    return Picture(buffer.getvalue(), width, height, areas)
