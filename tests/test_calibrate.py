import numpy as np
import pytest

from rollmatch import InputError, ParameterError, Scorer
from rollmatch.calibrate import (
    GOOD,
    OUTCOMES,
    UNMATCHED,
    VETOED,
    Evidence,
    calibrate,
    choose_thresholds,
    confusion,
    cross_validate,
    evidence,
    fold_of,
    labeled_files,
    outcomes,
    read_labeled,
    report_lines,
)

from .conftest import note_list


def hand_evidence(good, bad, good_pinned=None, bad_pinned=None) -> Evidence:
    good, bad = np.array(good, dtype=float), np.array(bad, dtype=float)
    none = np.zeros(good.size, dtype=bool)
    return Evidence(good, bad, none if good_pinned is None else np.array(good_pinned), none if bad_pinned is None else np.array(bad_pinned))


def test_separable_fragments_put_the_good_threshold_mid_gap_and_keep_a_harmless_bad_one():
    # good fragments at 0.9 and 0.95, bad ones at 0.5 and 0.7: every threshold in (0.7, 0.9] is optimal.
    ev = hand_evidence([0.9, 0.95, 0.5, 0.7], [0.3] * 4)
    is_good = np.array([True, True, False, False])
    assert choose_thresholds(ev, is_good, current=(0.99, 0.78)) == (0.8, 0.78)
    assert choose_thresholds(ev, is_good, current=(0.83, 0.78)) == (0.83, 0.78)  # already optimal: kept
    assert choose_thresholds(ev, is_good, current=(0.2, 0.78)) == (0.8, 0.78)


def test_a_bad_fragment_matching_a_good_exemplar_pulls_the_veto_down():
    # The bad fragment (0.95 good-like) can only be rejected by a veto below its 0.85, above the good ones' 0.6.
    ev = hand_evidence([0.9, 0.92, 0.95, 0.5], [0.5, 0.6, 0.85, 0.4])
    is_good = np.array([True, True, False, False])
    tau_good, tau_bad = choose_thresholds(ev, is_good, current=(0.83, 0.9))
    assert tau_good == 0.83 and 0.6 < tau_bad <= 0.85 and abs(tau_bad - 0.725) <= 0.1 * 0.25
    assert outcomes(ev, tau_good, tau_bad).tolist() == [GOOD, GOOD, VETOED, UNMATCHED]


def test_pinned_exemplars_decide_whatever_the_thresholds():
    ev = hand_evidence([0.1, 0.1], [0.1, 0.1], good_pinned=[True, True], bad_pinned=[False, True])
    assert outcomes(ev, 1.0, 1.0).tolist() == [GOOD, VETOED]


def test_confusion_figures_by_hand():
    is_good = np.array([True, True, True, False, False])
    c = confusion(is_good, np.array([GOOD, GOOD, VETOED, GOOD, UNMATCHED]))
    assert c.counts.tolist() == [[2, 0, 1], [1, 1, 0]]
    assert c.precision == 2 / 3 and c.recall == 2 / 3 and c.f1 == 2 * 2 / (2 * 2 + 1 + 1) and c.accuracy == 3 / 5
    assert confusion(is_good, np.full(5, UNMATCHED)).precision is None


def test_folds_are_stratified_and_seeded():
    is_good = np.array([True] * 7 + [False] * 5)
    fold = fold_of(is_good, 3, seed=1)
    for f in range(3):
        assert 2 <= (is_good & (fold == f)).sum() <= 3 and 1 <= (~is_good & (fold == f)).sum() <= 2
    assert fold.tolist() == fold_of(is_good, 3, seed=1).tolist()


def test_too_few_fragments_for_the_folds_is_refused():
    ev = hand_evidence([0.9, 0.9, 0.5], [0.1] * 3)
    with pytest.raises(ParameterError, match="folds=2 needs at least 2 fragments labeled good and 2 labeled bad; the labeled set has 2 good and 1 bad"):
        cross_validate(ev, np.array([True, True, False]), current=(0.83, 0.78), folds=2)
    with pytest.raises(ParameterError, match="folds=1 must be a whole number"):
        cross_validate(ev, np.array([True, True, False]), current=(0.83, 0.78), folds=1)


# --- real chorale material (the conftest's labeled_dir and mis_set_library) ------------------------------------------------------------------------------------


def test_calibration_repairs_a_mis_set_good_threshold(mis_set_library, labeled_dir):
    result = calibrate(mis_set_library, labeled_dir, folds=3)
    assert result.fragments == 24 and result.good == 12 and result.before_thresholds == (0.99, 0.78)
    assert result.before.recall == 0 and result.before.f1 == 0
    assert result.after.f1 > 0.8 and result.after.accuracy > result.before.accuracy
    tau_good, tau_bad = result.chosen
    assert tau_good < 0.99 and len(result.fold_thresholds) == 3
    # the chosen thresholds, applied by the real scorer, judge the labeled set as the calibration said
    library = mis_set_library.set_thresholds(good=tau_good, bad=tau_bad)
    verdicts = Scorer(library).score(list(read_labeled(labeled_dir).notes))
    is_good = read_labeled(labeled_dir).is_good
    assert confusion(is_good, np.array([OUTCOMES.index(v.verdict) for v in verdicts])).counts.tolist() == result.in_sample.counts.tolist()


def test_evidence_judges_exactly_like_the_scorer(mis_set_library, labeled_dir, tmp_path, chorale_excerpts):
    # one exemplar with its own threshold, so the pinned path is exercised too
    library = mis_set_library.add(note_list(tmp_path / "own.json", chorale_excerpts[12]), label="good", threshold=0.5)
    fragments = read_labeled(labeled_dir)
    scorer = Scorer(library)
    ev = evidence(scorer.similarities(fragments.notes).similarity, scorer.is_bad, scorer.overrides)
    for thresholds in ((0.99, 0.78), (0.83, 0.78), (0.6, 0.6)):
        expected = [OUTCOMES.index(v.verdict) for v in scorer.score(list(fragments.notes), good_threshold=thresholds[0], bad_threshold=thresholds[1])]
        assert outcomes(ev, *thresholds).tolist() == expected


def test_csv_gives_the_same_result_as_folders(mis_set_library, labeled_dir, tmp_path):
    rows = ["file,label"] + [f"{path.relative_to(labeled_dir)},{label.value}" for path, label in labeled_files(labeled_dir)]
    (labeled_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    try:
        by_csv = calibrate(mis_set_library, labeled_dir / "labels.csv", folds=3)
    finally:
        (labeled_dir / "labels.csv").unlink()
    by_folders = calibrate(mis_set_library, labeled_dir, folds=3)
    assert by_csv.chosen == by_folders.chosen and report_lines(by_csv) == report_lines(by_folders)


def test_report_shows_before_after_and_confusion(mis_set_library, labeled_dir):
    lines = report_lines(calibrate(mis_set_library, labeled_dir, folds=3))
    text = "\n".join(lines)
    assert lines[0] == "24 labeled fragments: 12 good, 12 bad"
    assert "before (manifest)" in text and "after (3-fold CV)" in text and "chosen, on all data" in text
    # the confusion rows: nothing is GOOD before, at the mis-set threshold
    confusion_rows = lines[lines.index(next(x for x in lines if x.startswith("confusion"))) + 1 :][:6]
    assert confusion_rows[0].split()[:3] == ["before", "(manifest)", "good"] and confusion_rows[0].split()[3] == "0"
    assert confusion_rows[1].split()[:1] == ["bad"] and confusion_rows[1].split()[1] == "0"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "nowhere", "no such file or directory"),
        (lambda d: (d / "good").mkdir() or d, "no bad/ folder"),
        (lambda d: [(d / x).mkdir() for x in ("good", "bad")] and d, "no labeled fragments"),
        (lambda d: (d / "l.csv").write_text("file,label\na.json,good\n") and d / "l.csv", "l.csv line 2: a.json: no such file"),
        (lambda d: (d / "a.json").write_text("[]") and (d / "l.csv").write_text("a.json,meh\n") and d / "l.csv",
         "l.csv line 1: label='meh' must be 'good' or 'bad'"),
        (lambda d: (d / "l.csv").write_text("\n# comment\na.json\n") and d / "l.csv", "l.csv line 3: expected 'file,label', got 1 fields"),
        (lambda d: (d / "l.csv").write_text("file,label\n") and d / "l.csv", "no labeled fragments"),
    ],
)
def test_labeled_set_errors_name_the_problem(tmp_path, setup, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        labeled_files(setup(tmp_path))


def test_unreadable_fragment_is_named(tmp_path):
    for label in ("good", "bad"):
        (tmp_path / label).mkdir()
    (tmp_path / "good" / "broken.mid").write_bytes(b"MThd")
    with pytest.raises(InputError, match="broken.mid: not a readable MIDI file"):
        read_labeled(tmp_path)
