import numpy as np
import pytest

from rollmatch import (
    Label,
    Library,
    LibraryError,
    Outcome,
    ParameterError,
    Scorer,
    SearchSpace,
    TemplateBank,
    Thresholds,
    defaults,
    make_notes,
    match,
    read_notes,
    score_files,
    select_beats,
    transform_notes,
    windows,
)
from rollmatch.manifest import ExemplarSpec
from rollmatch.notes import sort_notes
from rollmatch.roll import piano_roll
from rollmatch.scoring import BANK_CACHE_SIZE

from .conftest import REPO, chorale_path, chorale_voices, note_list, write_midi


@pytest.fixture(scope="module")
def scorer(default_library) -> Scorer:
    return Scorer(default_library, backend="cpu")


def test_shipped_examples_get_their_verdicts(scorer):
    results = {
        r.file.split("/")[-1]: r for r in score_files(sorted(str(p) for p in (REPO / "examples").glob("*.mid")), scorer)
    }
    good = results["bwv18.5-lz-opening.mid"].verdict
    assert good.outcome is Outcome.GOOD
    # The Leipzig version is the library's Weimar version a whole tone higher.
    assert (good.good.exemplar, good.good.transpose, good.good.shift_beats, good.good.stretch) == (
        "bwv18.5-w-phrase1",
        2,
        0.0,
        1.0,
    )
    assert results["bwv269-opening.mid"].verdict.outcome is Outcome.UNMATCHED
    vetoed = results["planing.mid"].verdict
    assert vetoed.outcome is Outcome.VETOED
    # The two-voice fifths pattern, in contains mode, is held whole among the planing's other voices.
    assert (vetoed.bad.exemplar, vetoed.bad.transpose, vetoed.bad.stretch) == ("parallel-fifths-pair", 5, 0.5)
    assert vetoed.bad.similarity == pytest.approx(1.0)


def test_warm_builds_the_banks_before_the_first_fragment(default_library):
    warm = Scorer(default_library, backend="cpu")
    assert warm.stretch_sets == ()
    one = warm.space.overridden(stretches=(1.0,))
    warm.warm([None, one])
    assert warm.stretch_sets == (defaults.STRETCHES, (1.0,))
    bank = warm.bank(one)
    fragment = read_notes(REPO / "examples" / "planing.mid")
    assert warm.score([fragment], space=one) == Scorer(default_library, backend="cpu").score([fragment], space=one)
    # a space that differs only in its transpositions shares the bank
    assert warm.bank(one.overridden(transpose_range=3)) is bank and warm.stretch_sets == (defaults.STRETCHES, (1.0,))


def test_every_exemplar_is_judged_by_itself(scorer, default_library):
    verdicts = scorer.score(default_library.notes())
    for exemplar, v in zip(default_library.exemplars, verdicts, strict=True):
        own = v.good if exemplar.label is Label.GOOD else v.bad
        assert own.exemplar == exemplar.id and own.similarity == pytest.approx(1.0, abs=1e-5)
        # No good exemplar is vetoed by a bad one, and every bad one is vetoed.
        assert v.outcome is (Outcome.GOOD if exemplar.label is Label.GOOD else Outcome.VETOED)


def test_empty_fragment_is_unmatched_with_no_matches(scorer):
    (v,) = scorer.score([make_notes([], [], [])])
    assert v.outcome is Outcome.UNMATCHED and v.good is None and v.bad is None and v.score == 0.5


def test_dense_cluster_never_passes_as_good(scorer):
    cluster = make_notes(
        [p for p in range(40, 84) for _ in range(8)],
        [b for _ in range(40, 84) for b in range(8)],
        [b + 1 for _ in range(40, 84) for b in range(8)],
    )
    (v,) = scorer.score([cluster])
    assert v.good.similarity < defaults.GOOD_THRESHOLD - 0.2
    assert v.outcome is Outcome.VETOED and v.bad.exemplar == "chromatic-cluster"


def test_fragment_shorter_than_one_step_scores_as_a_one_step_chord(scorer):
    blip = make_notes([55, 60, 64], [0.0] * 3, [0.02] * 3)
    step = make_notes([55, 60, 64], [0.0] * 3, [1 / defaults.STEPS_PER_BEAT] * 3)
    assert scorer.score([blip])[0] == scorer.score([step])[0]


def test_per_call_thresholds_change_the_verdict(scorer):
    notes = read_notes(REPO / "examples" / "bwv269-opening.mid")
    assert scorer.score([notes])[0].outcome is Outcome.UNMATCHED
    lower = scorer.thresholds.overridden(good=0.5)
    assert scorer.score([notes], thresholds=lower)[0].outcome is Outcome.GOOD
    assert scorer.score([notes], thresholds=lower.overridden(bad=0.5))[0].outcome is Outcome.VETOED


def test_a_smaller_search_space_misses_what_it_excludes(scorer):
    notes = read_notes(REPO / "examples" / "bwv18.5-lz-opening.mid")  # the exemplar transposed by +2
    assert scorer.score([notes], space=SearchSpace(transpose_range=1))[0].outcome is Outcome.UNMATCHED
    assert scorer.score([notes], space=SearchSpace(transpose_range=2, stretches=(1.0,)))[0].outcome is Outcome.GOOD


def test_windows_cover_the_piece():
    notes = make_notes([60, 62, 64], [0.0, 5.0, 9.5], [1.0, 6.0, 10.0])
    cut = windows(notes, window_beats=4)
    assert [(s, e) for s, e, _ in cut] == [(0, 4), (4, 8), (8, 12)]
    assert [w["pitch"].tolist() for _, _, w in cut] == [[60], [62], [64]]
    assert [(s, e) for s, e, _ in windows(notes, window_beats=4, hop_beats=3)] == [(0, 4), (3, 7), (6, 10), (9, 13)]
    with pytest.raises(ParameterError, match="window_beats=0 must be > 0"):
        windows(notes, window_beats=0)
    with pytest.raises(ParameterError, match="at most"):
        windows(make_notes([60], [0], [8000]), window_beats=1, hop_beats=0.01)


def test_window_matches_are_placed_in_the_piece(tmp_path, scorer, default_library):
    # A good exemplar, a tone lower, starting at beat 16 of a piece that begins with other Bach.
    exemplar = default_library.notes()[5]
    filler = read_notes(chorale_path("bwv269"), start_beat=12, end_beat=28)
    piece = sort_notes(np.concatenate([filler, transform_notes(exemplar, transpose=-2, shift_beats=16)]))
    path = write_midi(tmp_path / "piece.mid", piece, tempo=90)
    results = list(score_files([path], scorer, window_beats=8, hop_beats=8))
    assert [(r.start_beat, r.end_beat) for r in results][:3] == [(0, 8), (8, 16), (16, 24)]
    hit = results[2].verdict
    assert hit.outcome is Outcome.GOOD
    assert (hit.good.exemplar, hit.good.transpose, hit.good.shift_beats) == (default_library.exemplars[5].id, -2, 16.0)
    assert results[2].to_dict()["start_beat"] == 16


def test_unreadable_files_are_reported_and_the_rest_scored(tmp_path, scorer):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"not midi at all")
    results = list(score_files([broken, REPO / "examples" / "planing.mid", tmp_path / "gone.krn"], scorer))
    assert results[0].verdict is None and "broken.mid: not a readable MIDI file" in results[0].error
    assert results[0].to_dict() == {"file": str(broken), "error": results[0].error}
    assert results[1].verdict.outcome is Outcome.VETOED
    assert "no such file" in results[2].error


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hop_beats": 2.0}, "hop_beats needs window_beats"),
        ({"window_beats": -4.0}, "window_beats=-4 must be > 0"),
    ],
)
def test_bad_options_fail_before_any_file_is_read(scorer, kwargs, message):
    with pytest.raises(ParameterError, match=message):
        next(score_files(["never-read.mid"], scorer, **kwargs))


def test_bank_cache_stays_bounded_whatever_stretch_sets_callers_send(scorer):
    notes = read_notes(REPO / "examples" / "planing.mid")
    for i in range(BANK_CACHE_SIZE + 5):
        scorer.score([notes], space=SearchSpace(stretches=(1.0, 1.0 + (i + 1) / 64)))
    assert len(scorer._banks) == BANK_CACHE_SIZE
    assert scorer.score([notes], space=SearchSpace(stretches=(0.5,)))[0].bad.exemplar == "parallel-fifths-pair"


def test_empty_library_cannot_score(tmp_path):
    with pytest.raises(LibraryError, match="the library has no exemplars"):
        Scorer(Library.init(tmp_path / "empty"))


# --- what GOOD means, end to end: the shipped library and one built here ------------------------------------


@pytest.fixture(scope="module")
def built_library(tmp_path_factory) -> Library:
    """Four Bach phrases the shipped library does not hold, as good exemplars; as bad ones the two voices of
    parallel fifths in contains mode, with the shipped pattern's own threshold, and a four-voice planing as a
    near copy."""
    tmp = tmp_path_factory.mktemp("built")
    library = Library.init(tmp / "lib")
    for name in BUILT_GOOD:
        library = library.add(
            note_list(tmp / "src" / f"{name}.json", whole(chorale_voices(name))), ExemplarSpec(label="good")
        )
    shipped = REPO / "exemplars" / "bad"
    library = library.add(
        shipped / "parallel-fifths-pair.json", ExemplarSpec(label="bad", mode="contains", threshold=0.97)
    )
    return library.add(shipped / "parallel-fifths.json", ExemplarSpec(label="bad"))


BUILT_GOOD = ("bwv269", "bwv66.6", "bwv26.6", "bwv70.11")


def whole(voices: dict[str, np.ndarray]) -> np.ndarray:
    return sort_notes(np.concatenate(list(voices.values())))


@pytest.fixture(params=["shipped", "built"])
def library(request, default_library, built_library) -> Library:
    return default_library if request.param == "shipped" else built_library


def first_half(notes: np.ndarray) -> np.ndarray:
    first = float(notes["start"].min())
    return select_beats(notes, first, first + (float(notes["end"].max()) - first) / 2)


def test_the_first_half_of_an_exemplar_with_all_its_voices_is_still_good(library):
    scorer = Scorer(library)
    good = [(e.id, n) for e, n in zip(library.exemplars, library.notes(), strict=True) if e.label is Label.GOOD]
    verdicts = scorer.score([transform_notes(first_half(notes), transpose=3) for _, notes in good])
    for (exemplar_id, _), verdict in zip(good, verdicts, strict=True):
        assert verdict.outcome is Outcome.GOOD, exemplar_id
        assert verdict.good.exemplar == exemplar_id and verdict.good.similarity >= 0.95
        assert (verdict.good.transpose, verdict.good.shift_beats, verdict.good.coverage) == (3, 0.0, pytest.approx(1.0))


def test_a_half_that_holds_little_of_its_exemplar_scores_by_its_share():
    # BWV 8.6 opens with a lone bass pickup and two beats of melody: its first four beats hold a third of the
    # phrase's cells. Matched against the phrase with every voice, it is judged as if it held half: sqrt(share / 0.5).
    phrase = whole(chorale_voices("bwv8.6"))
    half = first_half(phrase)
    share = (piano_roll(half) > 0).sum() / (piano_roll(phrase) > 0).sum()
    assert 0.3 < share < 0.4
    library_bank = TemplateBank([phrase], SearchSpace(stretches=(1.0,)))
    assert match([half], library_bank).similarity[0, 0] == pytest.approx(np.sqrt(share / 0.5), abs=1e-6)
    # Its first six beats hold more than half, and match whole.
    assert match([select_beats(phrase, 0, 6)], library_bank).similarity[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_a_lone_voice_of_an_exemplar_is_not_good(default_library, built_library):
    # Each library against the four voices, one at a time, of one of its own good phrases.
    for library, name in ((default_library, "bwv165.6"), (built_library, "bwv269")):
        assert {f"{name}-phrase1", name} & {e.id for e in library.exemplars}
        verdicts = Scorer(library).score(list(chorale_voices(name).values()))
        assert [v.outcome for v in verdicts] == [Outcome.UNMATCHED] * 4, name
        assert max(v.good.similarity for v in verdicts) < 0.6


def fifths_in_a_chorale(voices: dict[str, np.ndarray], pair: np.ndarray, *, stretch: float, at: float) -> np.ndarray:
    """A chorale texture with its tenor and bass replaced, from beat ``at``, by the pair of voices moved to the
    bass's register and stretched; soprano and alto sound on."""
    register = int(np.median(voices["Bass"]["pitch"]))
    fifths = transform_notes(pair, transpose=register - int(pair["pitch"].min()), stretch=stretch, shift_beats=at)
    end = float(fifths["end"].max())
    kept = [voices["Soprano"], voices["Alto"]]
    for v in ("Tenor", "Bass"):
        kept.append(voices[v][(voices[v]["end"] <= at) | (voices[v]["start"] >= end)])
    return sort_notes(np.concatenate([*kept, fifths]))


@pytest.mark.parametrize(("stretch", "at"), [(0.5, 1.0), (0.75, 2.0), (1.0, 0.0)])
def test_parallel_fifths_in_contains_mode_veto_them_inside_a_chorale_texture(library, stretch, at):
    pair = read_notes(REPO / "exemplars" / "bad" / "parallel-fifths-pair.json")
    scorer = Scorer(library)
    for name in ("bwv40.8", "bwv8.6", "bwv1.6"):  # chorales neither library holds
        voices = chorale_voices(name)
        texture = fifths_in_a_chorale(voices, pair, stretch=stretch, at=at)
        plain, faulty = scorer.score([whole(voices), texture])
        assert plain.outcome is not Outcome.VETOED, name
        assert faulty.outcome is Outcome.VETOED and faulty.bad.exemplar == "parallel-fifths-pair", name
        assert (faulty.bad.similarity, faulty.bad.stretch, faulty.bad.shift_beats) == (pytest.approx(1.0), stretch, at)


def test_contains_mode_finds_a_fault_that_a_near_copy_misses(default_library, tmp_path):
    # The shipped example: BWV 269 with its outer voices in parallel double octaves for four beats; its alto and
    # tenor sound inside the pattern's box, half the energy there.
    texture = read_notes(REPO / "examples" / "octaves-in-a-chorale.mid")
    pair = read_notes(REPO / "exemplars" / "bad" / "parallel-octaves-pair.json")
    held, near = (
        match([texture], TemplateBank([pair], modes=[mode])).similarity[0, 0] for mode in ("contains", "near-copy")
    )
    assert held == pytest.approx(1.0) and near == pytest.approx(np.sqrt(0.5), abs=0.01)
    verdict = Scorer(default_library).score([texture])[0]
    assert verdict.outcome is Outcome.VETOED and verdict.bad.exemplar == "parallel-octaves-pair"


@pytest.mark.parametrize("pitches", [range(36, 85), range(55, 67)])
def test_a_dense_cluster_vetoes_nothing_and_matches_nothing_good_in_either_mode(library, pitches):
    cluster = make_notes(list(pitches), [0.0] * len(pitches), [8.0] * len(pitches))
    notes, exemplars = library.notes(), library.exemplars
    scorer = Scorer(library)
    thresholds = scorer.thresholds.for_exemplars(scorer.is_bad, scorer.overrides)
    for mode in ("near-copy", "contains"):
        bank = TemplateBank(notes, modes=[mode] * len(notes))
        best = match([cluster], bank)
        for k, e in enumerate(exemplars):
            if e.id != "chromatic-cluster":  # a cluster is, of course, a close copy of itself
                assert best.similarity[0, k] < thresholds[k], (mode, e.id, best.similarity[0, k])
    verdict = Scorer(library).score([cluster])[0]
    assert verdict.outcome is (
        Outcome.VETOED if "chromatic-cluster" in {e.id for e in exemplars} else Outcome.UNMATCHED
    )
    if verdict.outcome is Outcome.VETOED:
        assert verdict.bad.exemplar == "chromatic-cluster"


def test_batches_are_judged_as_one_call_and_split_back_in_order(scorer):
    good = read_notes(REPO / "examples" / "bwv18.5-lz-opening.mid")
    planing = read_notes(REPO / "examples" / "planing.mid")
    strict = Thresholds(good=0.99, bad=0.99, min_coverage=0.9)
    batches = [[good, planing], [], [planing]]
    answers = scorer.score_batches(batches, thresholds=strict)
    assert [len(a) for a in answers] == [2, 0, 1]
    assert answers[0] == scorer.score([good, planing], thresholds=strict)
    assert answers[2] == scorer.score([planing], thresholds=strict)
    assert all(v.min_coverage == 0.9 for batch in answers for v in batch)


def test_a_space_given_per_call_keeps_the_librarys_grid_values_and_modes(scorer, default_library):
    notes = read_notes(REPO / "examples" / "bwv269-opening.mid")
    asked = SearchSpace(stretches=(1.0,), transpose_range=3, steps_per_beat=24, velocity=True, mode="contains")
    taken = scorer.in_library(asked)
    assert (taken.stretches, taken.transpose_range) == ((1.0,), 3)
    assert taken.templates == default_library.config.space.overridden(stretches=(1.0,)).templates
    assert scorer.score([notes], space=asked) == scorer.score([notes], space=taken)
