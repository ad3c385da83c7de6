from rollmatch import Label, Match, make_notes
from rollmatch.engine import Mode
from rollmatch.explanation import Placed, alignment_text, coverage_text, placed_text


def test_placed_exemplars_word_how_they_matched():
    notes = make_notes([60], [0], [1])
    good_match = Match("phrase", 0.97, transpose=3, shift_beats=2.0, stretch=1.0, coverage=0.85, threshold=0.83)
    bad_match = Match("tritones", 0.81, transpose=-2, shift_beats=9.0, stretch=0.5, coverage=0.1, threshold=0.78)
    good = Placed(good_match, Label.GOOD, notes, Mode.NEAR_COPY, 0.6)
    bad = Placed(bad_match, Label.BAD, notes, Mode.CONTAINS, 0.0)
    assert placed_text(good) == "best good: phrase (near-copy), similarity 0.970 (threshold 0.83, reached)"
    assert coverage_text(good) == "coverage 85% (needs 60%, enough)"
    assert placed_text(bad) == "best bad: tritones (contains), similarity 0.810 (threshold 0.78, reached)"
    assert coverage_text(bad) == "coverage 10%"
    assert alignment_text(bad_match) == "t-2, shift 9 beats, stretch x1/2"
    missed = Placed(Match("phrase", 0.82, 0, 0.0, 1.0, 0.9, 0.83), Label.GOOD, notes, Mode.NEAR_COPY, 0.6)
    assert placed_text(missed).endswith("similarity 0.820 (threshold 0.83, not reached)")
    # A share just under what is needed never shows as that much: more digits where whole percents would tie.
    thin = Placed(Match("phrase", 0.97, 3, 2.0, 1.0, 0.5995, 0.83), Label.GOOD, notes, Mode.NEAR_COPY, 0.6)
    assert coverage_text(thin) == "coverage 59% (needs 60%, too little)"
    close = Placed(Match("phrase", 0.97, 3, 2.0, 1.0, 0.4926, 0.83), Label.GOOD, notes, Mode.NEAR_COPY, 0.4927)
    assert coverage_text(close) == "coverage 49.2% (needs 49.3%, too little)"
