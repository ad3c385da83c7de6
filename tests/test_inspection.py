import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from rollmatch import (
    Label,
    Library,
    Match,
    NotFoundError,
    Outcome,
    Scorer,
    Thresholds,
    draw,
    make_notes,
    read_notes,
    score_files,
    select_beats,
    transform_notes,
)
from rollmatch.inspection import (
    bars_of,
    explain,
    explanation_lines,
    place,
    summarize_exemplar,
    summary_lines,
    timeline_file,
)
from rollmatch.manifest import ExemplarSpec
from rollmatch.notes import sort_notes
from rollmatch.readers import read_piece
from rollmatch.roll import piano_roll

from .conftest import VOICES, chorale_path


def write_json(path, notes: np.ndarray):
    path.write_text(
        json.dumps([{"pitch": int(n["pitch"]), "start": float(n["start"]), "end": float(n["end"])} for n in notes])
    )
    return path


def test_summary_of_a_default_exemplar(default_library):
    exemplar = default_library.get("bwv121.6-phrase1")
    summary = summarize_exemplar(default_library, exemplar.id)
    notes = read_notes(default_library.path / exemplar.file, start_beat=exemplar.start_beat, end_beat=exemplar.end_beat)
    assert summary.notes.size == notes.size and summary.length_beats == exemplar.end_beat - exemplar.start_beat
    assert summary.threshold == default_library.config.good_threshold and not summary.own_threshold
    low, high = int(notes["pitch"].min()), int(notes["pitch"].max())
    text = "\n".join(summary_lines(summary))
    assert text.startswith("bwv121.6-phrase1  good exemplar")
    assert f"{notes.size}, pitches {draw.pitch_name(low)} ({low}) to {draw.pitch_name(high)} ({high})" in text
    # the chorale opens on a one-beat pickup (bar 0), so 12 beats of 4/4 touch bars 0 to 3
    assert "12 beats, 4 bars (bars 0-3 of the piece)" in text
    assert "threshold    0.83 (the library's good threshold)" in text
    assert "bach chorale phrase" in text and exemplar.provenance in text


def test_summary_of_a_note_list_with_its_own_threshold(tmp_path):
    library = Library.init(tmp_path / "lib")
    path = write_json(tmp_path / "run.json", make_notes([60, 62, 64, 65, 67], [0, 1, 2, 3, 4], [1, 2, 3, 4, 9]))
    library = library.add(path, ExemplarSpec(label="bad", threshold=0.9, tags=["scale"], start_beat=1))
    summary = summarize_exemplar(library, "run")
    assert summary.threshold == 0.9 and summary.own_threshold and summary.length_beats == 8
    text = "\n".join(summary_lines(summary))
    assert "beats 1-end" in text and "0.9 (its own)" in text and "4, pitches D4 (62) to G4 (67)" in text
    assert "8 beats, 3 bars (bars 1-3 of the piece)" in text  # regular 4/4 bars of the file: beat 1 is in bar 1
    assert summarize_exemplar(library, "run", beats_per_bar=2).bars.count(8) == 5
    with pytest.raises(NotFoundError, match="no exemplar with id 'nope'"):
        summarize_exemplar(library, "nope")


def test_place_lays_an_exemplar_as_the_engine_aligns_it():
    exemplar = make_notes([60, 64], [1.0, 2.0], [2.0, 3.0])  # first onset at beat 1
    placed = place(exemplar, Match("x", 0.9, transpose=2, shift_beats=-1.0, stretch=0.5, coverage=1.0, threshold=0.83))
    assert placed["pitch"].tolist() == [62, 66]
    assert placed["start"].tolist() == [-1.0, -0.5] and placed["end"].tolist() == [-0.5, 0.0]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """A library of one good and one bad real phrase, and a fragment holding both, moved and transposed."""
    tmp = tmp_path_factory.mktemp("crafted")
    phrase = select_beats(read_notes(chorale_path("bwv269"), tracks=VOICES), 1, 7)
    fault = select_beats(read_notes(chorale_path("bwv18.5-lz"), tracks=VOICES), 1, 5)
    library = Library.init(tmp / "lib")
    library = library.add(write_json(tmp / "phrase.json", phrase), ExemplarSpec(label="good"))
    library = library.add(write_json(tmp / "fault.json", fault), ExemplarSpec(label="bad"))
    good_part = place(
        phrase, Match("phrase", 1.0, transpose=3, shift_beats=2.0, stretch=1.0, coverage=1.0, threshold=0.83)
    )
    bad_part = place(
        fault, Match("fault", 1.0, transpose=-2, shift_beats=12.0, stretch=1.0, coverage=1.0, threshold=0.78)
    )
    return Scorer(library), good_part, bad_part


def test_explain_places_both_exemplars_at_the_winning_alignment(crafted):
    scorer, good_part, bad_part = crafted
    fragment = sort_notes(np.concatenate([good_part, bad_part]))
    explanation = explain(fragment, scorer, name="both.json")
    verdict = explanation.verdict
    assert verdict.outcome is Outcome.VETOED
    assert (verdict.good.exemplar, verdict.good.transpose, verdict.good.shift_beats, verdict.good.stretch) == (
        "phrase",
        3,
        2.0,
        1.0,
    )
    assert (verdict.bad.exemplar, verdict.bad.transpose, verdict.bad.shift_beats, verdict.bad.stretch) == (
        "fault",
        -2,
        12.0,
        1.0,
    )
    assert explanation.good.label is Label.GOOD and explanation.good.reached and explanation.bad.reached
    np.testing.assert_array_equal(sort_notes(explanation.good.notes), sort_notes(good_part))
    np.testing.assert_array_equal(sort_notes(explanation.bad.notes), sort_notes(bad_part))
    lines = explanation_lines(explanation)
    assert lines[0] == f"both.json: VETOED, score {verdict.score:.3f}"
    assert "a bad exemplar reaches its threshold" in lines[1]
    # Each part lies apart from the other in time, so each covers its own share of the fragment's cells.
    cells = {name: int((piano_roll(part) > 0).sum()) for name, part in (("good", good_part), ("bad", bad_part))}
    good_share, bad_share = (cells[name] / sum(cells.values()) for name in ("good", "bad"))
    assert (verdict.good.coverage, verdict.bad.coverage) == (pytest.approx(good_share), pytest.approx(bad_share))
    assert good_share < 0.6  # so the phrase, though reached, would not count for GOOD: the veto decides anyway
    # Shares are shown rounded down, so that they never look like more than they are.
    assert (
        f"best good: phrase (near-copy), similarity 1.000 (threshold 0.83, reached), coverage "
        f"{math.floor(good_share * 100)}% (needs 60%, too little)"
    ) in lines[2]
    assert "at t+3, shift 2 beats, stretch x1" in lines[3]
    assert (
        f"best bad: fault (near-copy), similarity 1.000 (threshold 0.78, reached), coverage "
        f"{math.floor(bad_share * 100)}%"
    ) in lines[4]

    picture = draw.explanation_picture(explanation)
    image = np.asarray(Image.open(io.BytesIO(picture.png)).convert("RGB")).astype(int)
    for part, colour in ((good_part, draw.GOOD_COLOUR), (bad_part, draw.BAD_COLOUR)):
        outline = np.all(np.abs(image - [int(colour[i : i + 2], 16) for i in (1, 3, 5)]) <= 40, axis=-1)
        for n in part:
            column, row = picture.pixel((n["start"] + n["end"]) / 2, n["pitch"] + draw.NOTE_HALF_HEIGHT)
            assert outline[row - 2 : row + 3, column - 2 : column + 3].any(), f"{colour} outline missing at {n}"


def test_explain_says_when_a_good_match_covers_too_little(crafted):
    # The phrase (6 beats) followed by 12 beats of another chorale: reached, but covering about a third.
    scorer, good_part, _ = crafted
    filler = transform_notes(select_beats(read_notes(chorale_path("bwv66.6"), tracks=VOICES), 0, 12), shift_beats=8.0)
    explanation = explain(sort_notes(np.concatenate([good_part, filler])), scorer, name="padded.json")
    verdict = explanation.verdict
    assert (
        verdict.outcome is Outcome.UNMATCHED
        and verdict.good.exemplar == "phrase"
        and verdict.good.similarity == pytest.approx(1.0)
    )
    assert 0.2 < verdict.good.coverage < 0.5
    why = explanation_lines(explanation)[1]
    assert why == (
        f"  why: the best good exemplar reaches its threshold but covers only {verdict.good.coverage:.0%} of the "
        "fragment, and GOOD needs 60%; no bad exemplar reaches its own"
    )
    relaxed = scorer.thresholds.overridden(min_coverage=0.2)
    assert explain(explanation.fragment, scorer, thresholds=relaxed).verdict.outcome is Outcome.GOOD


def test_explain_with_one_label_missing_says_none(crafted, tmp_path):
    _, good_part, _ = crafted
    only_good = Library.init(tmp_path / "lib").add(
        write_json(tmp_path / "p.json", good_part), ExemplarSpec(label="good")
    )
    explanation = explain(good_part, Scorer(only_good), name="p.json")
    assert explanation.bad is None and explanation.verdict.outcome is Outcome.GOOD
    assert explanation_lines(explanation)[-1] == "  best bad: none (no bad exemplar overlaps the fragment)"
    assert draw.explanation_picture(explanation).width > 0


def test_timeline_of_a_real_chorale(default_library, tmp_path):
    path = chorale_path("bwv269")
    scorer = Scorer(default_library)
    results = list(score_files([path], scorer, window_beats=8, hop_beats=8))
    picture = timeline_file(path, results, thresholds=Thresholds(0.83, 0.78, 0.6), tracks=None)
    assert set(picture.plots) == {"roll", "score", "similarity"}
    assert picture.plots["roll"].x[1] >= results[-1].end_beat
    image = np.asarray(Image.open(io.BytesIO(picture.png)).convert("RGB"))
    assert image.shape == (picture.height, picture.width, 3)


def test_drawings_use_the_files_own_bars_and_fall_back_for_note_lists(tmp_path):
    path = tmp_path / "notes.json"
    path.write_text('[{"pitch": 60, "start": 0, "end": 7}]')
    assert bars_of(read_piece(path), 7.0).starts.tolist() == [0, 4]  # a note list states no metre
    chorale = read_piece(chorale_path("bwv269"))  # 3/4 after a one-beat pickup
    assert bars_of(chorale, 7.0).starts[:4].tolist() == [0, 1, 4, 7] and bars_of(chorale, 7.0).first == 0
    assert bars_of(chorale, 7.0, beats_per_bar=2).starts.tolist() == [0, 2, 4, 6]  # asked for wins
