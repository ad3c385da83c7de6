"""Generators: the interface's checks, the loader, the bar transformations and the built-ins."""

import itertools
import re

import numpy as np
import pytest

from rollmatch import make_notes, select_beats
from rollmatch.errors import GeneratorError, ParameterError
from rollmatch.generators import (
    BUILTINS,
    VARIATIONS,
    BarOrigin,
    Context,
    Material,
    SourceRef,
    _dotted_rhythm,
    _neighbour_tone,
    _passing_tone,
    _revoice,
    _suspension,
    _voice_exchange,
    check_candidates,
    displace,
    fitted_tonic,
    invert,
    load_generator,
    propose,
    random_walk,
    scale_pitches,
    substitute,
    transpose_bar,
    variation,
)
from rollmatch.notes import NOTE_DTYPE, empty_notes

from .conftest import REPO

# An 8-beat, two-bar "exemplar": C-D-E-F in quarters, then a G half note over a held C3 and a whole-bar E.
EXEMPLAR = make_notes([60, 62, 64, 65, 67, 48, 64], [0, 1, 2, 3, 4, 4, 6], [1, 2, 3, 4, 6, 8, 8])
OTHER = make_notes([70, 72], [0, 2], [2, 4])


def material() -> Material:
    return Material([("scale", EXEMPLAR), ("other", OTHER)], beats_per_bar=4)


def context(notes=None, *, count=8, reference=None) -> Context:
    notes = empty_notes() if notes is None else notes
    bars = int(np.ceil(notes["end"].max() / 4)) if notes.size else 0
    return Context(notes, bars, 8, 4, count, material(), reference)


def as_tuples(notes):
    return [(int(n["pitch"]), float(n["start"]), float(n["end"])) for n in notes]


# --- Material -------------------------------------------------------------------------------------------


def test_material_cuts_exemplars_into_bars_and_knows_what_follows():
    m = material()
    assert [(b.exemplar, b.index) for b in m.bars] == [("scale", 0), ("scale", 1), ("other", 0)]
    assert as_tuples(m.bars[1].notes) == [(48, 0, 4), (67, 0, 2), (64, 2, 4)]
    assert [m.successor(i) for i in range(3)] == [1, None, None]
    assert m.continuable == (0,)


def test_material_finds_a_bar_up_to_transposition():
    m = material()
    up_three = transpose_bar(m.bars[0].notes, 3)
    assert m.find(up_three) == [(0, 3)]
    assert m.find(invert(m.bars[0].notes)) == []
    assert m.find(empty_notes()) == []


def test_context_gives_bars_from_their_own_start():
    ctx = context(EXEMPLAR)
    assert ctx.bar == 2
    assert as_tuples(ctx.bar_notes(-1)) == as_tuples(ctx.bar_notes(1)) == [(48, 0, 4), (67, 0, 2), (64, 2, 4)]
    with pytest.raises(ParameterError, match="index=2"):
        ctx.bar_notes(2)


# --- transformations ------------------------------------------------------------------------------------


def test_transpose_folds_back_into_the_midi_range_by_octaves():
    notes = make_notes([120, 125], [0, 1], [1, 2])
    assert transpose_bar(notes, 5)["pitch"].tolist() == [113, 118]  # 125 and 130 are an octave too high
    assert transpose_bar(notes, -2)["pitch"].tolist() == [118, 123]


def test_invert_mirrors_pitches_about_the_middle_of_their_range():
    notes = make_notes([60, 64, 67], [0, 1, 2], [1, 2, 3])
    assert as_tuples(invert(notes)) == [(67, 0, 1), (63, 1, 2), (60, 2, 3)]


def test_displace_rotates_within_the_bar_and_splits_what_crosses_its_end():
    notes = make_notes([60, 62, 64], [0, 2, 3], [1, 3, 4])
    # one beat later: 60 at 1-2, 62 at 3-4, and 64 (3-4 -> 4-5) wraps to 0-1
    assert as_tuples(displace(notes, 1.0, 4)) == [(64, 0, 1), (60, 1, 2), (62, 3, 4)]
    held = make_notes([60], [2], [4])
    assert as_tuples(displace(held, 1.0, 4)) == [(60, 0, 1), (60, 3, 4)]


def test_substitute_moves_exactly_the_asked_number_of_notes_by_a_step():
    notes = make_notes([60, 62, 64, 65], [0, 1, 2, 3], [1, 2, 3, 4])
    changed = substitute(notes, np.random.default_rng(5), count=1)
    moved = changed["pitch"].astype(int) - notes["pitch"].astype(int)
    assert np.count_nonzero(moved) == 1 and abs(moved).max() in (1, 2)
    assert np.array_equal(changed["start"], notes["start"])


# --- checking what a generator returns ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (make_notes([60], [0], [1]), "returned one note array; it must return a list of bars"),
        (None, "returned NoneType"),
        ([np.zeros(3)], "candidate 0: expected a note array of dtype NOTE_DTYPE .* got an array of dtype float64"),
        ([[60, 0, 1]], "candidate 0: expected a note array .* got list"),
        (
            [make_notes([60], [0], [1]), make_notes([60], [3], [5])],
            r"candidate 1: note 0 \(pitch=60, start=3, end=5\) is outside the bar \[0, 4\]",
        ),
        ([make_notes([60], [4], [4])], "is outside the bar"),
        ([make_notes([60] * 5, [0] * 5, [1] * 5)] * 9, "returned more than the 8 candidates asked for"),
        (itertools.repeat(make_notes([60], [0], [1])), "returned more than the 8 candidates"),
        ([np.zeros(1001, dtype=NOTE_DTYPE)], "1001 notes in one bar exceeds the limit of 1000"),
    ],
)
def test_bad_answers_are_refused_naming_the_generator(returned, message):
    with pytest.raises(GeneratorError, match=message) as caught:
        check_candidates(returned, name="mine", count=8, beats_per_bar=4)
    assert str(caught.value).startswith("generator 'mine'")


def test_invalid_note_values_are_refused_naming_the_generator():
    bar = np.zeros(1, dtype=NOTE_DTYPE)
    bar["pitch"], bar["start"], bar["end"], bar["velocity"] = 130, 0, 1, 90
    with pytest.raises(GeneratorError, match=r"generator 'mine', candidate 0: note 0 .*pitch must be within 0-127"):
        check_candidates([bar], name="mine", count=8, beats_per_bar=4)


def test_answers_are_snapped_to_the_midi_grid_and_empty_bars_dropped():
    bar = make_notes([60, 62], [0.0001, 1], [0.0001, 3.99999])  # a zero-length note, an end a hair before the bar's
    (out,) = check_candidates([bar, empty_notes()], name="mine", count=8, beats_per_bar=4)
    assert as_tuples(out.notes) == [(60, 0.0, 1 / 480), (62, 1.0, 4.0)]
    assert out.voices.tolist() == [0, 0]  # inferred: one line


def test_a_generator_that_raises_is_named_with_its_error():
    def broken(ctx, rng):
        raise KeyError("weights")

    with pytest.raises(GeneratorError, match=r"generator 'mod:broken' raised KeyError: 'weights'"):
        propose(broken, "mod:broken", context(), np.random.default_rng(0))


# --- loading --------------------------------------------------------------------------------------------


def test_builtins_load_by_name():
    assert load_generator("variation") is variation
    assert load_generator("random-walk") is random_walk
    assert set(BUILTINS) == {"variation", "markov", "random-walk"}


def test_a_module_function_and_a_file_function_load(tmp_path):
    assert load_generator("rollmatch.generators:variation") is variation
    source = tmp_path / "mine.py"
    source.write_text("def propose(context, rng):\n    return []\n")
    loaded = load_generator(f"{source}:propose")
    assert loaded(context(), np.random.default_rng(0)) == []


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        (
            "lstm",
            ParameterError,
            r"generator='lstm' must be a built-in \(variation, markov, random-walk\) or module:function",
        ),
        (":propose", ParameterError, "must be a built-in"),
        ("no_such_module_xyz:propose", GeneratorError, "generator module 'no_such_module_xyz' not found"),
        ("rollmatch.generators:no_such", GeneratorError, "rollmatch.generators has no attribute 'no_such'"),
        ("rollmatch.generators:CONTINUE_SHARE", GeneratorError, "is a float, not a callable"),
        ("/no/such/file.py:propose", GeneratorError, "generator file /no/such/file.py: no such file"),
    ],
)
def test_loading_errors_name_the_generator(spec, error, message):
    with pytest.raises(error, match=message):
        load_generator(spec)


def test_a_module_that_fails_to_import_is_named(tmp_path):
    source = tmp_path / "fails.py"
    source.write_text("import no_such_dependency_xyz\n")
    with pytest.raises(
        GeneratorError,
        match=r"importing .*fails.py failed: ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
    ):
        load_generator(f"{source}:propose")


# --- the built-ins --------------------------------------------------------------------------------------


def test_variation_goes_on_with_the_phrase_its_last_bar_came_from():
    piece = transpose_bar(material().bars[0].notes, -5)  # bar 0 of "scale", a fourth lower
    proposals = variation(context(piece, count=16), np.random.default_rng(0))
    going_on = [p for p in proposals if p.sources[:1] == (SourceRef("scale", 1, -5),)]
    assert going_on and 1 < len(proposals) <= 16
    plain = transpose_bar(material().bars[1].notes, -5)
    assert all(as_tuples(p.notes) == as_tuples(plain) for p in going_on if not p.transforms)
    # once varied, the bar is found by its origin, not by its notes
    varied = context(transpose_bar(EXEMPLAR[:4], 2), count=16)
    varied = Context(
        varied.notes, 1, 8, 4, 16, material(), origins=(BarOrigin("generated", sources=(SourceRef("scale", 0, 2),)),)
    )
    assert any(p.sources[:1] == (SourceRef("scale", 1, 2),) for p in variation(varied, np.random.default_rng(1)))


def test_variation_is_reproducible_and_valid():
    first = variation(context(), np.random.default_rng(7))
    second = variation(context(), np.random.default_rng(7))
    assert [p.notes.tobytes() for p in first] == [p.notes.tobytes() for p in second]
    assert len(check_candidates(first, name="variation", count=8, beats_per_bar=4)) == len(first)
    assert len({p.notes.tobytes() for p in first}) == len(first)
    assert all(p.sources and set(p.transforms) <= set(VARIATIONS) | {"sequence"} for p in first)


# A two-voice bar: the upper voice C5 (quarter) E5 (quarter) E5 (half), the lower C4 held for the whole bar.
TWO_VOICES = [
    [72.0, 0.0, 1.0, 90.0, 0.0],
    [76.0, 1.0, 2.0, 90.0, 0.0],
    [76.0, 2.0, 4.0, 90.0, 0.0],
    [60.0, 0.0, 4.0, 90.0, 1.0],
]
C_MAJOR = {0, 2, 4, 5, 7, 9, 11}


def rows_of(rows):
    return sorted((r[0], r[1], r[2], int(r[4])) for r in rows)


def test_a_passing_tone_fills_a_third_with_the_scale_step_between():
    out = _passing_tone([list(r) for r in TWO_VOICES], np.random.default_rng(0), scale=C_MAJOR)
    assert rows_of(out) == [(60, 0, 4, 1), (72, 0, 0.5, 0), (74, 0.5, 1, 0), (76, 1, 2, 0), (76, 2, 4, 0)]


def test_a_neighbour_tone_steps_away_and_back_on_a_repeated_note():
    out = _neighbour_tone([list(r) for r in TWO_VOICES], np.random.default_rng(0), scale=C_MAJOR)
    # the only repeated pair is E5-E5: the first E's second half moves a step (F5 above, D5 below)
    (moved,) = [r for r in rows_of(out) if r[0] not in (60, 72, 76)]
    assert moved[0] in (74, 77) and moved[1:] == (1.5, 2, 0)
    assert len(out) == 5


def test_a_suspension_holds_a_note_into_the_next_and_a_dotted_rhythm_lengthens_the_first():
    bar = [[72.0, 0.0, 1.0, 90.0, 0.0], [71.0, 1.0, 2.0, 90.0, 0.0], [60.0, 0.0, 2.0, 90.0, 1.0]]
    assert rows_of(_suspension([list(r) for r in bar], np.random.default_rng(0))) == [
        (60, 0, 2, 1),
        (71, 1.5, 2, 0),
        (72, 0, 1.5, 0),
    ]
    assert rows_of(_dotted_rhythm([list(r) for r in bar], np.random.default_rng(0))) == [
        (60, 0, 2, 1),
        (71, 1.5, 2, 0),
        (72, 0, 1.5, 0),
    ]
    assert _suspension([list(r) for r in TWO_VOICES], np.random.default_rng(0)) is None  # no voice moves by step


def test_voice_exchange_and_revoicing_keep_the_voices_in_order():
    chord = [
        [76.0, 0.0, 4.0, 90.0, 0.0],
        [67.0, 0.0, 4.0, 90.0, 1.0],
        [60.0, 0.0, 4.0, 90.0, 2.0],
        [48.0, 0.0, 4.0, 90.0, 3.0],
    ]
    exchanged = rows_of(_voice_exchange([list(r) for r in chord], np.random.default_rng(0)))
    assert len(exchanged) == 4 and sorted(r[3] for r in exchanged) == [0, 1, 2, 3]
    by_voice = sorted(exchanged, key=lambda r: r[3])
    assert all(a[0] > b[0] for a, b in itertools.pairwise(by_voice))  # the upper voice stays above the lower
    assert {r[0] % 12 for r in exchanged} == {4, 7, 0}
    revoiced = rows_of(_revoice([list(r) for r in chord], np.random.default_rng(0)))
    inner = [r for r in revoiced if r[3] in (1, 2)]
    assert revoiced != rows_of(chord) and all(48 < r[0] < 76 and r[0] % 12 in {0, 4, 7} for r in inner)


def test_variation_needs_good_exemplars():
    empty = Context(empty_notes(), 0, 4, 4, 8, Material([], beats_per_bar=4))
    with pytest.raises(GeneratorError, match="no good exemplars"):
        variation(empty, np.random.default_rng(0))


def test_fitted_tonic_and_scale():
    g_major = make_notes([67, 71, 74, 66, 72], [0, 1, 2, 3, 4], [1, 2, 3, 4, 5])  # F sharp and C: G major, not C or D
    assert fitted_tonic(g_major) == 7
    assert fitted_tonic(empty_notes()) == 0
    assert scale_pitches(0)[:8].tolist() == [0, 2, 4, 5, 7, 9, 11, 12]


def test_random_walk_fills_the_bar_with_one_line_on_the_scale():
    piece = make_notes([67, 72, 74, 66], [0, 1, 2, 3], [1, 2, 3, 4])  # G major, ending on F sharp
    bars = random_walk(context(piece), np.random.default_rng(3))
    assert bars and len(bars) <= 8
    for bar in bars:
        assert bar["start"][0] == 0 and bar["end"][-1] == 4
        assert np.array_equal(bar["start"][1:], bar["end"][:-1])  # one note at a time, no gaps
        assert set((bar["pitch"] - 7) % 12) <= {0, 2, 4, 5, 7, 9, 11}
    assert check_candidates(bars, name="random-walk", count=8, beats_per_bar=4)


def test_the_readmes_generator_example_plugs_in(tmp_path, default_library):
    readme = (REPO / "README.md").read_text()
    source = re.search(r"```python\n(# intervals\.py.+?)```", readme, re.DOTALL).group(1)
    (tmp_path / "intervals.py").write_text(source)
    generator = load_generator(f"{tmp_path / 'intervals.py'}:propose")
    piece = select_beats(default_library.notes()[0], 0, 4)
    ctx = Context(piece, 1, 8, 4, 8, Material.from_library(default_library))
    bars = propose(generator, "intervals.py:propose", ctx, np.random.default_rng(0))
    assert len(bars) == 8 and all(bar.notes.size == 4 and bar.notes["end"].max() == 4 for bar in bars)


def test_a_generators_own_generator_error_is_not_wrapped_again():
    empty = Context(empty_notes(), 0, 4, 4, 8, Material([], beats_per_bar=4))
    with pytest.raises(GeneratorError, match=r"^the library has no good exemplars"):
        propose(variation, "variation", empty, np.random.default_rng(0))
