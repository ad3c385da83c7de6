from pathlib import Path

import numpy as np
import pytest

from rollmatch import InputError, Library, ParameterError, Scorer, Thresholds, transform_notes
from rollmatch.calibrate import (
    BAD_KIND,
    GOOD,
    GOOD_KIND,
    KINDS,
    OTHER_KIND,
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
from rollmatch.cli import main
from rollmatch.lint import random_material
from rollmatch.manifest import ExemplarSpec
from rollmatch.notes import perturb_notes, sort_notes

from .conftest import chorale_voices, note_list, write_midi

G, B, OTHER = GOOD_KIND, BAD_KIND, OTHER_KIND


def hand_evidence(good, bad, good_pinned=None, bad_pinned=None) -> Evidence:
    good, bad = np.array(good, dtype=float), np.array(bad, dtype=float)
    none = np.zeros(good.size, dtype=bool)
    return Evidence(
        good,
        bad,
        none if good_pinned is None else np.array(good_pinned),
        none if bad_pinned is None else np.array(bad_pinned),
    )


def test_separable_fragments_put_the_good_threshold_mid_gap_and_keep_a_harmless_bad_one():
    # good fragments at 0.9 and 0.95, other ones at 0.5 and 0.7: every threshold in (0.7, 0.9] is optimal.
    ev = hand_evidence([0.9, 0.95, 0.5, 0.7], [0.3] * 4)
    kinds = np.array([G, G, OTHER, OTHER])
    assert choose_thresholds(ev, kinds, current=(0.99, 0.78)) == (0.8, 0.78)
    assert choose_thresholds(ev, kinds, current=(0.83, 0.78)) == (0.83, 0.78)  # already optimal: kept
    assert choose_thresholds(ev, kinds, current=(0.2, 0.78)) == (0.8, 0.78)


def test_a_bad_fragment_matching_a_good_exemplar_pulls_the_veto_down():
    # The bad fragment (0.95 good-like) is VETOED only below its 0.85, above the good ones' 0.6.
    ev = hand_evidence([0.9, 0.92, 0.95, 0.5], [0.5, 0.6, 0.85, 0.4])
    kinds = np.array([G, G, B, OTHER])
    tau_good, tau_bad = choose_thresholds(ev, kinds, current=(0.83, 0.9))
    assert tau_good == 0.83 and 0.6 < tau_bad <= 0.85 and abs(tau_bad - 0.725) <= 0.1 * 0.25
    assert outcomes(ev, tau_good, tau_bad).tolist() == [GOOD, GOOD, VETOED, UNMATCHED]


def test_a_bad_fragment_that_merely_fails_to_be_good_is_not_enough():
    # Nothing bad resembles a good exemplar, so every veto threshold keeps them from GOOD; only a veto below
    # their 0.82-0.88 judges them as they should be, and the good ones (0.5 to bad) stay GOOD.
    ev = hand_evidence([0.9, 0.92, 0.3, 0.35], [0.5, 0.45, 0.82, 0.88])
    kinds = np.array([G, G, B, B])
    tau_good, tau_bad = choose_thresholds(ev, kinds, current=(0.83, 0.95))
    assert tau_good == 0.83 and 0.5 < tau_bad <= 0.82
    assert outcomes(ev, tau_good, tau_bad).tolist() == [GOOD, GOOD, VETOED, VETOED]
    # Read as two labels (bad meaning only 'not GOOD'), the veto in force is already optimal and stays.
    assert choose_thresholds(ev, np.array([G, G, OTHER, OTHER]), current=(0.83, 0.95)) == (0.83, 0.95)


@pytest.mark.parametrize(
    ("good", "bad", "kinds", "current"),
    [
        # A good fragment 4e-6 under τ_good, within the grid's rounding of it: not GOOD, so τ_good must move.
        ([0.799996, 0.5], [0.3, 0.3], [G, OTHER], (0.8, 0.78)),
        # A bad fragment 4e-6 under τ_bad: not VETOED, so τ_bad must move.
        ([0.9, 0.3], [0.3, 0.779996], [G, B], (0.83, 0.78)),
    ],
)
def test_thresholds_in_force_are_kept_only_when_the_verdicts_say_they_are_optimal(good, bad, kinds, current):
    ev, kinds = hand_evidence(good, bad), np.array(kinds)
    assert confusion(kinds, outcomes(ev, *current)).balanced == 0.5
    chosen = choose_thresholds(ev, kinds, current=current)
    assert confusion(kinds, outcomes(ev, *chosen)).balanced == 1.0
    assert sum(a != b for a, b in zip(chosen, current, strict=True)) == 1  # only the threshold at fault moved


def test_pinned_exemplars_decide_whatever_the_thresholds():
    ev = hand_evidence([0.1, 0.1], [0.1, 0.1], good_pinned=[True, True], bad_pinned=[False, True])
    assert outcomes(ev, 1.0, 1.0).tolist() == [GOOD, VETOED]


def test_confusion_figures_by_hand():
    kinds = np.array([G, G, G, B, B, OTHER, OTHER, OTHER])
    c = confusion(kinds, np.array([GOOD, GOOD, VETOED, GOOD, VETOED, GOOD, UNMATCHED, VETOED]))
    assert c.counts.tolist() == [[2, 0, 1], [1, 0, 1], [1, 1, 1]]
    assert (c.success(G), c.success(B), c.success(OTHER)) == (2 / 3, 1 / 2, 2 / 3)
    assert c.balanced == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert c.precision == 2 / 4 and c.vetoed(G) == 1 / 3
    two = confusion(np.array([G, B]), np.array([UNMATCHED, UNMATCHED]))
    assert two.precision is None and two.success(OTHER) is None and two.balanced == 0.0  # other/ absent: left out


def test_folds_are_stratified_and_seeded():
    kinds = np.array([G] * 7 + [B] * 5 + [OTHER] * 3)
    fold = fold_of(kinds, 3, seed=1)
    for f in range(3):
        members = kinds[fold == f]
        assert 2 <= (members == G).sum() <= 3 and 1 <= (members == B).sum() <= 2 and (members == OTHER).sum() == 1
    assert fold.tolist() == fold_of(kinds, 3, seed=1).tolist()


def test_too_few_fragments_for_the_folds_is_refused():
    ev = hand_evidence([0.9, 0.9, 0.5, 0.4], [0.1] * 4)
    with pytest.raises(
        ParameterError,
        match="folds=2 needs at least 2 fragments of each kind labeled; the labeled set has 2 good, 1 bad, 1 other",
    ):
        cross_validate(ev, np.array([G, G, B, OTHER]), current=(0.83, 0.78), folds=2)
    with pytest.raises(ParameterError, match="folds=1 must be a whole number"):
        cross_validate(ev, np.array([G, G, B, B]), current=(0.83, 0.78), folds=1)
    with pytest.raises(
        ParameterError,
        match="needs fragments labeled good and fragments labeled bad or other; "
        "the labeled set has 4 good, 0 bad, 0 other",
    ):
        cross_validate(ev, np.array([G, G, G, G]), current=(0.83, 0.78), folds=2)


# --- real chorale material (the conftest's labeled_dir and mis_set_library) -------------------------------------------


def test_calibration_repairs_a_mis_set_good_threshold(mis_set_library, labeled_dir):
    result = calibrate(mis_set_library, labeled_dir, folds=3)
    assert result.fragments == 24 and result.kinds == (12, 4, 8) and result.before_thresholds == (0.99, 0.78)
    assert result.before.success(G) == 0
    assert result.after.success(G) > 0.8 and result.after.balanced > result.before.balanced
    assert result.after.success(B) >= result.before.success(B)  # the veto is not given up for it
    tau_good, tau_bad = result.chosen
    assert tau_good < 0.99 and len(result.fold_thresholds) == 3 and result.new_findings == ()
    # the chosen thresholds, applied by the real scorer, judge the labeled set as the calibration said
    library = mis_set_library.set_thresholds(good=tau_good, bad=tau_bad)
    fragments = read_labeled(labeled_dir)
    verdicts = Scorer(library).score(list(fragments.notes))
    judged = confusion(fragments.kinds, np.array([OUTCOMES.index(v.outcome) for v in verdicts]))
    assert judged.counts.tolist() == result.in_sample.counts.tolist()


@pytest.mark.parametrize("min_coverage", [0.6, 0.95])
def test_evidence_judges_exactly_like_the_scorer(
    mis_set_library, labeled_dir, tmp_path, chorale_excerpts, min_coverage
):
    # one exemplar with its own threshold, so the pinned path is exercised too; at 0.95 coverage decides some
    library = mis_set_library.add(
        note_list(tmp_path / "own.json", chorale_excerpts[12]), ExemplarSpec(label="good", threshold=0.5)
    )
    fragments = read_labeled(labeled_dir)
    scorer = Scorer(library)
    ev = evidence(scorer.similarities(fragments.notes), scorer.is_bad, scorer.overrides, min_coverage=min_coverage)
    for thresholds in ((0.99, 0.78), (0.83, 0.78), (0.6, 0.6)):
        verdicts = scorer.score(list(fragments.notes), thresholds=Thresholds(*thresholds, min_coverage))
        assert outcomes(ev, *thresholds).tolist() == [OUTCOMES.index(v.outcome) for v in verdicts]


def test_csv_gives_the_same_result_as_folders(mis_set_library, labeled_dir, tmp_path):
    rows = ["file,label"] + [
        f"{path.relative_to(labeled_dir)},{KINDS[kind]}" for path, kind in labeled_files(labeled_dir)
    ]
    assert {row.split(",")[1] for row in rows[1:]} == set(KINDS)
    (labeled_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    try:
        by_csv = calibrate(mis_set_library, labeled_dir / "labels.csv", folds=3)
    finally:
        (labeled_dir / "labels.csv").unlink()
    by_folders = calibrate(mis_set_library, labeled_dir, folds=3)
    assert by_csv.chosen == by_folders.chosen and report_lines(by_csv) == report_lines(by_folders)


def test_a_folder_of_good_and_bad_only_still_calibrates(mis_set_library, labeled_dir, tmp_path):
    two = tmp_path / "two"
    for kind in ("good", "bad"):
        (two / kind).mkdir(parents=True)
        for file in (labeled_dir / kind).iterdir():
            (two / kind / file.name).write_bytes(file.read_bytes())
    result = calibrate(mis_set_library, two, folds=3)
    assert result.kinds == (12, 4, 0) and result.chosen[0] < 0.99
    assert report_lines(result)[0] == "16 labeled fragments: 12 good, 4 bad"


def test_report_shows_before_after_and_confusion(mis_set_library, labeled_dir):
    lines = report_lines(calibrate(mis_set_library, labeled_dir, folds=3))
    text = "\n".join(lines)
    assert lines[0] == "24 labeled fragments: 12 good, 4 bad, 8 other"
    assert "before (manifest)" in text and "after (3-fold CV)" in text and "chosen, on all data" in text
    assert "bad VETOED" in lines[2] and "other not GOOD" in lines[2]
    # the confusion rows: nothing is GOOD before, at the mis-set threshold
    confusion_rows = lines[lines.index(next(x for x in lines if x.startswith("confusion"))) + 1 :][:9]
    assert confusion_rows[0].split()[:3] == ["before", "(manifest)", "good"] and confusion_rows[0].split()[3] == "0"
    assert confusion_rows[1].split()[0] == "bad" and confusion_rows[2].split()[0] == "other"


# --- three-way calibration keeps the veto -----------------------------------------------------------------------------


def near_miss_set(tmp_path: Path) -> tuple[Library, Path]:
    """Six Bach phrases as good exemplars and, as bad ones, three of them with the tenor replaced by the bass a
    fifth higher (parallel fifths throughout: near misses of good phrases). Labeled: two noisy, transposed copies
    of each good phrase (good/) and four of each faulty one (bad/)."""
    satb = ["Soprano", "Alto", "Tenor", "Bass"]
    names = ["bwv269", "bwv66.6", "bwv26.6", "bwv8.6", "bwv40.8", "bwv70.11"]
    voices = {n: chorale_voices(n) for n in names}
    whole = {n: sort_notes(np.concatenate(list(voices[n].values()))) for n in names}
    faulty = {
        n: sort_notes(
            np.concatenate(
                [voices[n][v] for v in satb if v != "Tenor"] + [transform_notes(voices[n]["Bass"], transpose=7)]
            )
        )
        for n in names[:3]
    }
    library = Library.init(tmp_path / "lib")
    for n in names:
        library = library.add(note_list(tmp_path / "src" / f"{n}.json", whole[n]), ExemplarSpec(label="good"))
    for n in names[:3]:
        library = library.add(note_list(tmp_path / "src" / f"{n}-fifths.json", faulty[n]), ExemplarSpec(label="bad"))
    rng = np.random.default_rng(5)
    labeled = tmp_path / "labeled"
    for kind, source, transpositions in (("good", whole, (-2, 3)), ("bad", faulty, (-3, 1, 2, 4))):
        (labeled / kind).mkdir(parents=True)
        for n, notes in source.items():
            for t in transpositions:
                write_midi(labeled / kind / f"{n}{t:+d}.mid", transform_notes(perturb_notes(notes, rng), transpose=t))
    return library, labeled


def test_three_way_calibration_keeps_the_veto_where_the_two_label_objective_dropped_it(tmp_path):
    library, labeled = near_miss_set(tmp_path)
    result = calibrate(library, labeled, folds=3)
    assert result.before_thresholds == (0.83, 0.78) and result.before.success(B) == 1.0
    # Some good copies come within 0.78 of their phrase's faulty twin, so the veto in force costs good ones.
    assert result.before.vetoed(G) > 0
    assert result.in_sample.success(B) >= 0.9 and result.after.success(B) >= 0.9
    assert result.in_sample.success(G) >= result.before.success(G)
    # The two-label objective (bad/ meaning only 'not GOOD') on the same evidence: vetoes cost it nothing, so it
    # moves the veto above the good copies' similarity to the faulty phrases, past most of the faulty copies.
    fragments = read_labeled(labeled)
    scorer = Scorer(library)
    ev = evidence(
        scorer.similarities(fragments.notes), scorer.is_bad, scorer.overrides, min_coverage=library.config.min_coverage
    )
    two_label = choose_thresholds(ev, np.where(fragments.kinds == B, OTHER, fragments.kinds), current=(0.83, 0.78))
    dropped = confusion(fragments.kinds, outcomes(ev, *two_label))
    assert two_label[1] > result.chosen[1] and dropped.success(B) < 0.5


def test_calibration_warns_of_new_findings_and_will_not_write_them(mis_set_library, tmp_path, chorale_excerpts, capsys):
    # Heavily damaged copies labeled good (half their notes gone, as many random ones added) against random
    # four-voice noise as other: the objective pulls the good threshold far down, where degenerate probes pass.
    labeled = tmp_path / "labeled"
    rng = np.random.default_rng(3)
    for i in (0, 2, 4, 6, 8, 10):
        for copy in range(2):
            note_list(
                labeled / "good" / f"damaged{i}-{copy}.json", perturb_notes(chorale_excerpts[i], rng, drop=0.5, add=0.5)
            )
    for k, notes in enumerate(random_material(12, beats=8, seed=4)):
        note_list(labeled / "other" / f"noise{k}.json", notes)
    (labeled / "bad").mkdir()
    library = mis_set_library.set_thresholds(good=0.83)
    result = calibrate(library, labeled, folds=3)
    assert result.chosen[0] < 0.7 and result.new_findings
    assert {f.code for f in result.new_findings} >= {"probe-good"}
    manifest = (library.path / "rollmatch.toml").read_bytes()
    assert main(["library", "calibrate", str(library.path), str(labeled), "--folds", "3", "--write"]) == 1
    out, err = capsys.readouterr()
    assert "rollmatch: warning: at the chosen thresholds: probe-good: probe '" in err
    assert out.splitlines()[-1].startswith(f"not written: good_threshold = {result.chosen[0]:g}")
    assert (library.path / "rollmatch.toml").read_bytes() == manifest


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: d / "nowhere", "no such file or directory"),
        (lambda d: (d / "good").mkdir() or d, "no bad/ folder"),
        (lambda d: [(d / x).mkdir() for x in ("good", "bad")] and d, "no labeled fragments"),
        (
            lambda d: (d / "l.csv").write_text("file,label\na.json,good\n") and d / "l.csv",
            "l.csv line 2: a.json: no such file",
        ),
        (
            lambda d: (d / "a.json").write_text("[]") and (d / "l.csv").write_text("a.json,meh\n") and d / "l.csv",
            "l.csv line 1: label='meh' must be 'good', 'bad' or 'other'",
        ),
        (
            lambda d: (d / "l.csv").write_text("\n# comment\na.json\n") and d / "l.csv",
            "l.csv line 3: expected 'file,label', got 1 fields: 'a.json'",
        ),
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
    with pytest.raises(InputError, match=r"broken\.mid: not a readable MIDI file"):
        read_labeled(tmp_path)
