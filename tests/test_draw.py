"""Screenshot-level checks of the pictures: sizes, and notes, bar lines, overlays and scores drawn where the
data says, read back from the PNG pixels."""

import io

import numpy as np
import pytest
from PIL import Image

from rollmatch import FileResult, Label, Match, Outcome, Thresholds, Verdict, draw, make_notes, read_notes, select_beats
from rollmatch.engine import Mode
from rollmatch.explanation import Explanation, Placed
from rollmatch.inspection import place
from rollmatch.readers import read_piece

from .conftest import VOICES, chorale_path


def pixels(png: bytes) -> np.ndarray:
    """(height, width, 3) uint8 RGB."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])


def near(image: np.ndarray, colour: str, tolerance: int = 12) -> np.ndarray:
    """Mask of the pixels within ``tolerance`` of ``colour`` in every channel."""
    return np.all(np.abs(image.astype(int) - rgb(colour)) <= tolerance, axis=-1)


def around(mask: np.ndarray, column: int, row: int, radius: int = 2) -> bool:
    return bool(mask[row - radius : row + radius + 1, column - radius : column + radius + 1].any())


@pytest.fixture(scope="module")
def bwv269() -> np.ndarray:
    """The first 32 beats of a real four-voice chorale (3/4 with a pickup)."""
    return select_beats(read_notes(chorale_path("bwv269"), tracks=VOICES), 0, 32)


def test_a_chorale_roll_draws_every_note_where_it_sounds(bwv269):
    bars = read_piece(chorale_path("bwv269")).bars
    picture = draw.roll_picture(bwv269, bars=bars.window(0, 32), title="bwv269")
    image = pixels(picture.png)
    assert image.shape == (picture.height, picture.width, 3)
    # 32 beats at PIXELS_PER_BEAT, within the caps; the roll spans the notes plus a margin of pitches
    assert picture.pixel(11, 60)[0] - picture.pixel(10, 60)[0] == pytest.approx(draw.PIXELS_PER_BEAT, abs=1)
    assert picture.plots["roll"].y == (
        bwv269["pitch"].min() - draw.PITCH_MARGIN - 0.5,
        bwv269["pitch"].max() + draw.PITCH_MARGIN + 0.5,
    )
    note = near(image, draw.NOTE_COLOUR)
    for n in bwv269:
        column, row = picture.pixel((n["start"] + n["end"]) / 2, n["pitch"])
        assert note[row, column], f"note {n} is not drawn"
    expected_area = (
        np.sum((bwv269["end"] - bwv269["start"]) * draw.PIXELS_PER_BEAT)
        * 2
        * draw.NOTE_HALF_HEIGHT
        * draw.PIXELS_PER_SEMITONE
    )
    assert 0.5 * expected_area < note.sum() < 1.1 * expected_area
    # nothing in the empty rows above the top note; bar lines through them at the chorale's bar starts
    top = int(bwv269["pitch"].max()) + draw.PITCH_MARGIN
    left, _, right, _ = (int(v) for v in picture.plots["roll"].box)
    row = picture.pixel(0, top)[1]
    assert not note[row - 3 : row + 4, left:right].any()
    dark = image.sum(axis=-1) < 3 * 150
    for start in bars.starts[(bars.starts > 0) & (bars.starts < 32)]:
        assert around(dark, *picture.pixel(start, top), radius=1), f"no bar line at beat {start}"
    assert not around(dark, *picture.pixel(2.5, top), radius=1)  # mid-bar


def test_a_long_piece_makes_a_capped_picture():
    rng = np.random.default_rng(5)
    start = rng.uniform(0, 8000, 3000)
    notes = make_notes(rng.integers(0, 128, 3000), start, start + rng.uniform(0.1, 4, 3000))
    picture = draw.roll_picture(notes, beats_per_bar=3)
    left, top, right, bottom = picture.plots["roll"].box
    assert right - left == pytest.approx(draw.MAX_ROLL_WIDTH_PX, abs=1) and bottom - top == pytest.approx(
        draw.MAX_ROLL_HEIGHT_PX, abs=1
    )
    assert pixels(picture.png).shape[:2] == (picture.height, picture.width)
    assert picture.width <= draw.MAX_ROLL_WIDTH_PX + 200 and picture.height <= draw.MAX_ROLL_HEIGHT_PX + 200


def test_an_empty_roll_is_still_a_picture():
    picture = draw.roll_picture(make_notes([], [], []))
    assert pixels(picture.png).shape == (picture.height, picture.width, 3)
    assert not near(pixels(picture.png), draw.NOTE_COLOUR).any()


def test_pitch_labels_thin_out_but_always_name_the_cs():
    assert draw.pitch_ticks((47.5, 60.5), 20.0).tolist() == list(range(48, 61))
    assert draw.pitch_ticks((47.5, 72.5), draw.PIXELS_PER_SEMITONE).tolist() == list(range(48, 73, 2))
    assert draw.pitch_ticks((20.5, 108.5), 3.0).tolist() == list(range(24, 109, 4))
    assert draw.pitch_ticks((-0.5, 127.5), 0.5).tolist() == list(range(0, 128, 12))


def test_the_explanation_overlays_each_exemplar_where_it_matched(bwv269):
    good_exemplar = select_beats(bwv269, 1, 7)  # bars 1-2 of the chorale
    bad_exemplar = make_notes([60, 66, 60], [0, 1, 2], [1, 2, 3])
    good_match = Match("phrase", 0.97, transpose=3, shift_beats=2.0, stretch=1.0, coverage=0.85, threshold=0.83)
    bad_match = Match("tritones", 0.81, transpose=-2, shift_beats=9.0, stretch=0.5, coverage=0.1, threshold=0.78)
    good = Placed(good_match, Label.GOOD, place(good_exemplar, good_match), Mode.NEAR_COPY, 0.6)
    bad = Placed(bad_match, Label.BAD, place(bad_exemplar, bad_match), Mode.CONTAINS, 0.0)
    fragment = np.concatenate([good.notes, bad.notes])
    verdict = Verdict(Outcome.VETOED, -1 + (0.97 + 1 - 0.81) / 2, good_match, bad_match, 0.6)
    explanation = Explanation("crafted.json", fragment, verdict, good, bad, read_piece(chorale_path("bwv269")).bars)
    picture = draw.explanation_picture(explanation)
    image = pixels(picture.png)
    green, orange = near(image, draw.GOOD_COLOUR, 40), near(image, draw.BAD_COLOUR, 40)
    for notes, mask, other in ((good.notes, green, orange), (bad.notes, orange, green)):
        for n in notes:
            middle = (n["start"] + n["end"]) / 2
            assert around(mask, *picture.pixel(middle, n["pitch"] + draw.NOTE_HALF_HEIGHT))  # the outline's top edge
            assert not around(other, *picture.pixel(middle, n["pitch"] + draw.NOTE_HALF_HEIGHT))
    # the legend, under the roll, shows both exemplars' colours
    below = int(picture.plots["roll"].box[3]) + 30
    assert green[below:].any() and orange[below:].any()


def window(start: float, outcome: Outcome, score: float, good: float, bad: float, coverage: float) -> FileResult:
    good_match, bad_match = Match("g", good, 0, start, 1.0, coverage, 0.83), Match("b", bad, 0, start, 1.0, 0.2, 0.78)
    verdict = Verdict(outcome, score, good_match, bad_match, 0.6)
    return FileResult("piece.mid", verdict, start_beat=start, end_beat=start + 8)


def test_the_timeline_colours_each_window_by_its_verdict(bwv269):
    windows = [
        window(0, Outcome.GOOD, 1.9, 0.95, 0.15, 1.0),
        window(8, Outcome.UNMATCHED, 0.5, 0.62, 0.55, 0.3),
        window(16, Outcome.VETOED, -0.4, 0.5, 0.7, 0.4),
        window(24, Outcome.GOOD, 1.7, 0.9, 0.5, 0.75),
    ]
    picture = draw.timeline_picture(bwv269, windows, thresholds=Thresholds(0.83, 0.78, 0.6), title="bwv269")
    image = pixels(picture.png)
    score, similarity = picture.plots["score"], picture.plots["similarity"]
    assert score.box[1] > picture.plots["roll"].box[3] and similarity.box[1] > score.box[3]  # both under the roll
    assert score.x == similarity.x == picture.plots["roll"].x
    masks = {outcome: near(image, colour) for outcome, colour in draw.OUTCOME_COLOURS.items()}
    for w in windows:
        middle = w.start_beat + 4
        assert around(masks[w.verdict.outcome], *score.pixel(middle, w.verdict.score))
        assert around(masks[Outcome.GOOD], *similarity.pixel(middle, w.verdict.good.similarity))
        assert around(masks[Outcome.VETOED], *similarity.pixel(middle, w.verdict.bad.similarity))
        assert around(near(image, draw.COVERAGE_COLOUR), *similarity.pixel(middle, w.verdict.good.coverage))
        for other in set(Outcome) - {w.verdict.outcome}:
            assert not around(masks[other], *score.pixel(middle, w.verdict.score))
    # the thresholds run across the whole panel, dashed
    left, _, right, _ = (int(v) for v in similarity.box)
    for threshold, colour in ((0.83, draw.GOOD_COLOUR), (0.78, draw.BAD_COLOUR), (0.6, draw.COVERAGE_COLOUR)):
        row = similarity.pixel(0, threshold)[1]
        drawn = near(image, colour, 60)[row - 1 : row + 2, left:right].any(axis=0)
        assert all(part.any() for part in np.array_split(drawn, 8)) and not drawn.all()
