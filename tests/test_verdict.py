import numpy as np
import pytest

from rollmatch import BestMatches, Label, Match, Outcome, ParameterError, judge, make_notes
from rollmatch.engine import Mode
from rollmatch.verdict import (
    Placed,
    alignment_text,
    coverage_text,
    exemplar_thresholds,
    placed_text,
)

IDS = ("good-a", "good-b", "bad-x")
IS_BAD = np.array([False, False, True])
NO_OVERRIDE = np.full(3, np.nan)


def best(*rows: list[float], coverage: list[float] | None = None) -> BestMatches:
    sims = np.array(rows, dtype=np.float64)
    shape = sims.shape
    return BestMatches(
        similarity=sims,
        transpose=np.tile(np.array([2, -3, 5]), (shape[0], 1)),
        shift_steps=np.tile(np.array([24, 6, 0]), (shape[0], 1)),
        stretch=np.tile(np.array([1.0, 0.5, 2.0]), (shape[0], 1)),
        coverage=np.tile(np.array(coverage or [1.0, 0.9, 0.25]), (shape[0], 1)),
    )


def verdicts(matches: BestMatches, overrides=NO_OVERRIDE, good=0.8, bad=0.7, origins=None, min_coverage=0.6):
    thresholds = exemplar_thresholds(IS_BAD, overrides, good_threshold=good, bad_threshold=bad)
    return judge(matches, IDS, IS_BAD, thresholds, steps_per_beat=12, min_coverage=min_coverage, origin_beats=origins)


def test_good_needs_a_strong_good_match_and_no_strong_bad_one():
    good, unmatched, vetoed = verdicts(best([0.9, 0.5, 0.3], [0.79, 0.5, 0.3], [0.99, 0.9, 0.7]))
    assert good.verdict is Outcome.GOOD
    assert unmatched.verdict is Outcome.UNMATCHED
    assert vetoed.verdict is Outcome.VETOED  # a bad match at its threshold vetoes even a perfect good one


def test_verdict_explains_itself():
    (v,) = verdicts(best([0.9, 0.95, 0.3]), origins=[8.0])
    assert v.good.exemplar == "good-b" and v.good.similarity == 0.95
    assert (v.good.transpose, v.good.shift_beats, v.good.stretch) == (-3, 8.5, 0.5)
    assert v.bad.exemplar == "bad-x" and (v.bad.transpose, v.bad.shift_beats, v.bad.stretch) == (5, 8.0, 2.0)
    assert v.to_dict() == {
        "verdict": "GOOD",
        "score": 1.825,
        "good": {
            "exemplar": "good-b",
            "similarity": 0.95,
            "transpose": -3,
            "shift_beats": 8.5,
            "stretch": 0.5,
            "coverage": 0.9,
        },
        "bad": {
            "exemplar": "bad-x",
            "similarity": 0.3,
            "transpose": 5,
            "shift_beats": 8.0,
            "stretch": 2.0,
            "coverage": 0.25,
        },
        "nearest": {
            "exemplar": "good-b",
            "similarity": 0.95,
            "transpose": -3,
            "shift_beats": 8.5,
            "stretch": 0.5,
            "coverage": 0.9,
        },
    }


def test_score_ranks_every_good_above_every_other():
    rows = [[0.81, 0.0, 0.69], [0.99, 0.0, 0.0], [0.79, 0.0, 0.0], [0.5, 0.0, 0.2], [1.0, 0.0, 0.7], [0.0, 0.0, 1.0]]
    results = verdicts(best(*rows))
    assert [v.verdict for v in results] == [
        Outcome.GOOD,
        Outcome.GOOD,
        Outcome.UNMATCHED,
        Outcome.UNMATCHED,
        Outcome.VETOED,
        Outcome.VETOED,
    ]
    scores = [v.score for v in results]
    # tier + (g + 1 - b) / 2, by hand
    assert scores == pytest.approx([1.56, 1.995, 0.895, 0.65, -0.35, -1.0])
    assert min(scores[:2]) > max(scores[2:])
    assert min(scores[2:4]) > max(scores[4:])


def test_per_exemplar_thresholds_override_the_library_and_the_call():
    overrides = np.array([0.95, np.nan, 0.5])
    (v,) = verdicts(best([0.9, 0.0, 0.3]), overrides=overrides)
    assert v.verdict is Outcome.UNMATCHED  # good-a needs 0.95 of its own
    (v,) = verdicts(best([0.96, 0.0, 0.55]), overrides=overrides)
    assert v.verdict is Outcome.VETOED  # bad-x vetoes from 0.5, below the global 0.7
    (v,) = verdicts(best([0.9, 0.0, 0.3]), overrides=overrides, good=0.5)
    assert v.verdict is Outcome.UNMATCHED  # the exemplar's own threshold wins over the call's too


def test_per_call_thresholds_replace_the_library_defaults():
    row = [0.75, 0.0, 0.6]
    assert verdicts(best(row), good=0.8, bad=0.7)[0].verdict is Outcome.UNMATCHED
    assert verdicts(best(row), good=0.7, bad=0.7)[0].verdict is Outcome.GOOD
    assert verdicts(best(row), good=0.7, bad=0.55)[0].verdict is Outcome.VETOED


def test_reported_match_prefers_one_that_reaches_its_threshold():
    # good-a is more similar but misses its own 0.95; good-b passes the library's 0.8 and is reported.
    (v,) = verdicts(best([0.9, 0.85, 0.1]), overrides=np.array([0.95, np.nan, np.nan]))
    assert v.verdict is Outcome.GOOD and v.good.exemplar == "good-b"


def test_no_match_is_reported_as_none():
    (v,) = verdicts(best([0.0, 0.0, 0.0]))
    assert v.good is None and v.bad is None and v.verdict is Outcome.UNMATCHED and v.score == 0.5
    only_good = judge(best([0.9, 0.2, 0.0]), IDS, np.zeros(3, bool), np.full(3, 0.8), steps_per_beat=12)[0]
    assert only_good.bad is None and only_good.verdict is Outcome.GOOD


def test_good_needs_its_match_to_cover_enough_of_the_fragment():
    # good-a reaches its threshold over only half the fragment; good-b covers 0.9 of it but is weaker.
    half = best([0.95, 0.81, 0.1], coverage=[0.5, 0.9, 0.2])
    (v,) = verdicts(half)
    assert v.verdict is Outcome.GOOD and v.good.exemplar == "good-b"  # the match that counts is reported
    (v,) = verdicts(half, min_coverage=0.95)
    assert v.verdict is Outcome.UNMATCHED and v.good.exemplar == "good-a"  # none counts: the most similar
    (v,) = verdicts(half, min_coverage=0.0)
    assert v.verdict is Outcome.GOOD and v.good.exemplar == "good-a"
    # A coverage within the tie tolerance below the requirement counts, as a similarity does.
    assert verdicts(best([0.9, 0.0, 0.0], coverage=[0.6 - 1e-9, 0, 0]))[0].verdict is Outcome.GOOD


def test_nothing_overlapping_reaches_any_threshold_however_low():
    # Thresholds and coverage requirements are accepted down to just above 0; a similarity of 0 never counts.
    (v,) = verdicts(best([0.0, 0.0, 0.0], coverage=[0.0, 0.0, 0.0]), good=5e-7, bad=5e-7, min_coverage=0.0)
    assert v.verdict is Outcome.UNMATCHED and v.good is None and v.bad is None


def test_a_bad_match_vetoes_however_little_it_covers():
    (v,) = verdicts(best([0.99, 0.0, 0.75], coverage=[1.0, 0.0, 0.05]))
    assert v.verdict is Outcome.VETOED and v.bad.coverage == 0.05


@pytest.mark.parametrize("value", [-0.1, 1.2, float("nan"), "0.6"])
def test_min_coverage_is_validated(value):
    with pytest.raises(ParameterError, match="min_coverage="):
        verdicts(best([0.9, 0.0, 0.0]), min_coverage=value)


@pytest.mark.parametrize("value", [0, -0.1, 1.2, float("nan"), "0.8", True])
def test_thresholds_are_validated(value):
    with pytest.raises(ParameterError, match="good_threshold="):
        exemplar_thresholds(IS_BAD, NO_OVERRIDE, good_threshold=value)


def test_placed_exemplars_word_how_they_matched():
    notes = make_notes([60], [0], [1])
    good_match = Match("phrase", 0.97, transpose=3, shift_beats=2.0, stretch=1.0, coverage=0.85)
    bad_match = Match("tritones", 0.81, transpose=-2, shift_beats=9.0, stretch=0.5, coverage=0.1)
    good = Placed(good_match, Label.GOOD, 0.83, notes, Mode.NEAR_COPY, 0.6)
    bad = Placed(bad_match, Label.BAD, 0.78, notes, Mode.CONTAINS, 0.0)
    assert placed_text(good) == "best good: phrase (near-copy), similarity 0.970 (threshold 0.83, reached)"
    assert coverage_text(good) == "coverage 85% (needs 60%, enough)"
    assert placed_text(bad) == "best bad: tritones (contains), similarity 0.810 (threshold 0.78, reached)"
    assert coverage_text(bad) == "coverage 10%"
    assert alignment_text(bad_match) == "t-2, shift 9 beats, stretch x1/2"
    # A share just under what is needed never shows as that much: more digits where whole percents would tie.
    thin = Placed(Match("phrase", 0.97, 3, 2.0, 1.0, 0.5995), Label.GOOD, 0.83, notes, Mode.NEAR_COPY, 0.6)
    assert coverage_text(thin) == "coverage 59% (needs 60%, too little)"
    close = Placed(Match("phrase", 0.97, 3, 2.0, 1.0, 0.4926), Label.GOOD, 0.83, notes, Mode.NEAR_COPY, 0.4927)
    assert coverage_text(close) == "coverage 49.2% (needs 49.3%, too little)"
