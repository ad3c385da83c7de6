import math

import numpy as np
import pytest

from rollmatch import (
    ParameterError,
    SearchSpace,
    TemplateBank,
    engine,
    make_notes,
    match,
    select_beats,
    transform_notes,
)
from rollmatch.defaults import CONTAINS_DENSITY, PARTIAL_MIN_SHARE, STRETCHES
from rollmatch.notes import perturb_notes, sort_notes
from rollmatch.roll import note_steps, piano_roll

SPB = 12


@pytest.fixture(params=["dense", "sparse"])
def method(request):
    """Every engine test runs on both computations; they must give the same results."""
    return request.param


def best_of(fragment, exemplars, method, modes=None, **space):
    bank = TemplateBank(exemplars, SearchSpace(**{"stretches": (1.0,), **space}), modes=modes)
    return match([fragment], bank, method=method)


# --- hand-built rolls with hand-computed answers ------------------------------------------------------


C_E = make_notes([60, 64], [0.0, 1.0], [1.0, 2.0])  # box: pitches 60-64 x 24 steps, 24 cells on


def test_identical_fragment_matches_exactly(method):
    r = best_of(C_E, [C_E], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[0, 0], r.shift_steps[0, 0], r.stretch[0, 0]) == (0, 0, 1.0)


def test_extra_note_inside_the_box_lowers_the_score(method):
    # One more beat of D4 inside the box: 24 / sqrt(24 * 36).
    fragment = sort_notes(np.concatenate([C_E, make_notes([62], [0.0], [1.0])]))
    assert best_of(fragment, [C_E], method).similarity[0, 0] == pytest.approx(math.sqrt(24 / 36), abs=1e-6)


def test_notes_in_another_register_do_not_lower_the_score(method):
    fragment = sort_notes(np.concatenate([C_E, make_notes([70, 40], [0.0, 0.0], [2.0, 2.0])]))
    r = best_of(fragment, [C_E], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6) and r.transpose[0, 0] == 0


def test_partial_overlap_counts_only_what_overlaps(method):
    # Only the exemplar's second note (E4) lies inside the fragment: 12 / sqrt(24 * 12), one beat early.
    fragment = make_notes([64, 30], [0.0, 0.0], [1.0, 4.0])
    r = best_of(fragment, [C_E], method, stretches=(1.0,))
    assert r.similarity[0, 0] == pytest.approx(math.sqrt(0.5), abs=1e-6)
    assert r.shift_steps[0, 0] == -SPB


def test_dense_cluster_scores_only_the_exemplars_own_density(method):
    # Every pitch sounding for 4 beats: under the 5 x 24 box all 120 cells are on, 24 of them match.
    cluster = make_notes(range(36, 90), [0.0] * 54, [4.0] * 54)
    r = best_of(cluster, [C_E], method)
    assert r.similarity[0, 0] == pytest.approx(math.sqrt(24 / 120), abs=1e-6)


def test_transposition_and_shift_are_reported(method):
    fragment = transform_notes(C_E, transpose=-7, shift_beats=2.5)
    r = best_of(fragment, [C_E], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[0, 0], r.shift_steps[0, 0]) == (-7, int(2.5 * SPB))


def test_ties_go_to_the_smallest_transposition_then_the_earliest_shift(method):
    # A 4-pitch, 1-beat block fits at full similarity inside a 10-pitch, 3-beat block at t = -2..+4 and at
    # every shift of 0-2 beats: the report must be t = 0 at the block's start, not whatever float noise favours.
    block = make_notes(range(60, 64), [0.0] * 4, [1.0] * 4)
    wide = make_notes(range(58, 68), [1.0] * 10, [4.0] * 10)
    r = best_of(wide, [block], method, stretches=(0.5, 1.0))
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[0, 0], r.shift_steps[0, 0], r.stretch[0, 0]) == (0, SPB, 1.0)


def test_ties_keep_their_order_across_the_segments_of_a_long_fragment(method):
    # C_E a semitone up at beat 0 and exactly at beat 8: both match fully, and the tie goes to t = 0 although it
    # lies in a later overlap-save segment of this 10-beat fragment (one 2-beat template: segments of 50 steps).
    fragment = make_notes([61, 65, 60, 64], [0, 1, 8, 9], [1, 2, 9, 10])
    r = match([fragment], TemplateBank([C_E], SearchSpace(stretches=(1.0,), transpose_range=2)), method=method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[0, 0], r.shift_steps[0, 0]) == (0, 8 * SPB)


def test_a_piece_of_a_longer_exemplar_matches_it(method):
    # The fragment (E4 then G4) is the middle of the exemplar: the exemplar's first onset is one beat earlier.
    exemplar = make_notes([60, 64, 67, 72], [0, 1, 2, 3], [1, 2, 3, 4])
    piece = make_notes([64, 67], [0, 1], [1, 2])
    r = best_of(piece, [exemplar], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert r.shift_steps[0, 0] == -SPB


def test_empty_fragment_matches_nothing(method):
    r = best_of(make_notes([], [], []), [C_E], method)
    assert r.similarity[0, 0] == 0.0


def test_fragment_shorter_than_one_step_is_a_tiny_piece_of_a_longer_exemplar(method):
    # A 1/100-beat C major triad occupies one step: 3 of the exemplar's 48 cells lie under its span, far below
    # the share floor, so it scores 3 / sqrt(0.5 * 48 * 3), not 1.
    exemplar = make_notes([60, 64, 67, 62], [0, 0, 0, 1], [1, 1, 1, 2])
    blip = make_notes([60, 64, 67], [0.0] * 3, [0.01] * 3)
    assert piano_roll(blip).shape == (128, 1)
    r = best_of(blip, [exemplar], method)
    assert r.similarity[0, 0] == pytest.approx(3 / math.sqrt(0.5 * 48 * 3), abs=1e-6)
    # Against an exemplar no longer than itself it is the exemplar's box that counts, and a lone chord is a
    # whole exemplar: 1, and 3 / sqrt(3 * 4) against a chord with a note between its voices.
    assert best_of(blip, [blip], method).similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    crowded = make_notes([60, 62, 64, 67], [0] * 4, [0.01] * 4)
    assert best_of(blip, [crowded], method).similarity[0, 0] == pytest.approx(math.sqrt(3 / 4), abs=1e-6)


# A bass C3 held for four beats under a melody C5 E5 G5 C6 in quarters: 96 cells, box 48-84 x 48 steps.
MELODY_OVER_BASS = make_notes([48, 72, 76, 79, 84], [0, 0, 1, 2, 3], [4, 1, 2, 3, 4])


def test_a_piece_of_an_exemplar_with_all_its_voices_matches_it(method):
    # The first half, both voices: 48 cells, all the exemplar holds under those two beats (half its energy).
    half = select_beats(MELODY_OVER_BASS, 0, 2)
    r = best_of(half, [MELODY_OVER_BASS], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.shift_steps[0, 0], r.coverage[0, 0]) == (0, pytest.approx(1.0))


@pytest.mark.parametrize(
    ("piece", "expected"),
    [
        # The melody's first half alone: 24 cells under two beats that hold 48 of the exemplar's: 24/sqrt(48*24).
        (make_notes([72, 76], [0, 1], [1, 2]), math.sqrt(0.5)),
        # The bass held alone for two beats: the same.
        (make_notes([48], [0], [2]), math.sqrt(0.5)),
        # Its first beat, both voices: 24 cells under a span holding a quarter of the exemplar, judged as if it
        # held half (the share floor): 24 / sqrt(48 * 24).
        (make_notes([48, 72], [0, 0], [1, 1]), math.sqrt(0.5)),
        # One beat of the bass alone: 12 / sqrt(48 * 12).
        (make_notes([48], [1], [2]), 0.5),
    ],
)
def test_a_lone_voice_or_a_sliver_of_a_longer_exemplar_is_no_match(piece, expected, method):
    assert best_of(piece, [MELODY_OVER_BASS], method).similarity[0, 0] == pytest.approx(expected, abs=1e-6)


# Bass and tenor in parallel fifths, C3-G3, D3-A3, E3-B3, F3-C4, a beat each: 96 cells, box 48-60 x 48 steps.
FIFTHS = make_notes([48, 55, 50, 57, 52, 59, 53, 60], [0, 0, 1, 1, 2, 2, 3, 3], [1, 1, 2, 2, 3, 3, 4, 4])


def test_contains_mode_lets_other_notes_sound_inside_the_box(method):
    # The fifths with a B-flat held above the bass inside the box (48 cells more) and a soprano above the box.
    texture = sort_notes(np.concatenate([FIFTHS, make_notes([58, 72], [0, 0], [4, 4])]))
    near = best_of(texture, [FIFTHS], method).similarity[0, 0]
    held = best_of(texture, [FIFTHS], method, modes=["contains"])
    assert near == pytest.approx(math.sqrt(96 / 144), abs=1e-6)  # the B-flat counts against a near copy
    assert held.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert held.coverage[0, 0] == pytest.approx(144 / 192)  # the soprano lies outside the box


def test_contains_mode_needs_the_whole_pattern(method):
    # The fifths' first two beats, with other notes around: in near-copy mode a piece of the exemplar (half its
    # energy under the span: 1.0), but it contains only half the pattern: 48 / sqrt(96 * 48).
    piece = sort_notes(np.concatenate([select_beats(FIFTHS, 0, 2), make_notes([64], [0], [2])]))
    assert best_of(piece, [FIFTHS], method).similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert best_of(piece, [FIFTHS], method, modes=["contains"]).similarity[0, 0] == pytest.approx(
        math.sqrt(0.5), abs=1e-6
    )


def test_contains_mode_guards_against_a_dense_cluster(method):
    # Every semitone 48-60 for four beats: 624 cells in the box, 96 of them the exemplar's. Past the guard
    # (3 x 96 = 288 cells) contains scores sqrt(3) times near-copy: sqrt(3 * 96 / 624).
    cluster = make_notes(range(48, 61), [0.0] * 13, [4.0] * 13)
    near = best_of(cluster, [FIFTHS], method).similarity[0, 0]
    held = best_of(cluster, [FIFTHS], method, modes=["contains"]).similarity[0, 0]
    assert near == pytest.approx(math.sqrt(96 / 624), abs=1e-6)
    assert held == pytest.approx(math.sqrt(3 * 96 / 624), abs=1e-6)


def test_contains_mode_weighs_velocities_on_the_exemplars_own_cells(method):
    # C4 loud then E4 at velocity 64, with a loud D4 inside the box, against the plain C4-E4 exemplar.
    a = 64 / 127
    fragment = make_notes([60, 64, 62], [0, 1, 0], [1, 2, 1], velocity=[127, 64, 127])
    held = best_of(fragment, [C_E], method, velocity=True, modes=["contains"]).similarity[0, 0]
    near = best_of(fragment, [C_E], method, velocity=True).similarity[0, 0]
    assert held == pytest.approx((1 + a) / math.sqrt(2 * (1 + a * a)), abs=1e-6)
    assert near == pytest.approx((1 + a) / math.sqrt(2 * (2 + a * a)), abs=1e-6)


def test_coverage_is_the_share_of_the_fragment_inside_the_window(method):
    # C_E (24 cells) matched exactly, with 24 cells above its box and 24 after it: a third of the fragment.
    fragment = sort_notes(np.concatenate([C_E, make_notes([70, 62], [0, 2], [2, 4])]))
    r = best_of(fragment, [C_E], method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert r.coverage[0, 0] == pytest.approx(1 / 3)
    # Shorter than the exemplar, the window spans the whole fragment: its notes outside the exemplar's rows
    # are what lies outside. The melody's first half (24 cells) with a note two octaves above its box (12).
    piece = sort_notes(np.concatenate([select_beats(MELODY_OVER_BASS, 0, 2), make_notes([100], [0], [1])]))
    r = best_of(piece, [MELODY_OVER_BASS], method)
    assert r.coverage[0, 0] == pytest.approx(48 / 60)
    assert best_of(make_notes([30], [0], [1]), [C_E], method).coverage[0, 0] == 0.0  # nothing overlaps


def test_modes_are_validated():
    with pytest.raises(ParameterError, match="mode='exact' must be one of near-copy, contains"):
        TemplateBank([C_E], modes=["exact"])
    with pytest.raises(ParameterError, match="modes: 2 modes for 1 exemplars"):
        TemplateBank([C_E], modes=["contains", "contains"])


def test_velocity_weighting_follows_the_dynamics(method):
    loud_soft = make_notes([60, 64], [0, 1], [1, 2], velocity=[127, 32])
    even = make_notes([60, 64], [0, 1], [1, 2], velocity=[80, 80])
    assert best_of(loud_soft, [even], method).similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    a, b = 127 / 127, 32 / 127
    expected = (a + b) / math.sqrt(2 * (a * a + b * b))  # cosine between (1, 1) and (a, b)
    assert best_of(loud_soft, [even], method, velocity=True).similarity[0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stretches": (0.0,)}, "stretch=0 must be > 0"),
        ({"stretches": (-1.0,)}, "stretch=-1 must be > 0"),
        ({"stretches": (16.0,)}, "stretch=16 must be within"),
        ({"stretches": ()}, "at least one"),
        ({"stretches": (1.0, 1.0)}, "repeats"),
    ],
)
def test_search_space_is_validated(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        SearchSpace(**kwargs)


def test_method_is_validated():
    with pytest.raises(ParameterError, match="method='fastest' must be one of auto, dense, sparse"):
        match([C_E], TemplateBank([C_E]), method="fastest")


@pytest.mark.parametrize("value", [-1, 61, 2.5])
def test_transpose_range_is_validated(value):
    with pytest.raises(ParameterError, match=f"transpose_range={value}"):
        SearchSpace(transpose_range=value)


def test_a_match_may_change_the_transposition_range_of_its_bank_and_nothing_else(method):
    # C_E five semitones up: out of reach at range 4, the bank's, found at range 5 given per call.
    bank = TemplateBank([C_E], SearchSpace(stretches=(1.0,), transpose_range=4))
    up = transform_notes(C_E, transpose=5)
    near = match([up], bank, method=method)
    assert abs(near.transpose[0, 0]) <= 4 and near.similarity[0, 0] < 0.9
    found = match([up], bank, bank.space.overridden(transpose_range=5), method=method)
    assert found.transpose[0, 0] == 5 and found.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ParameterError, match="in more than its transpose_range"):
        match([up], bank, SearchSpace(stretches=(1.0,), steps_per_beat=24), method=method)


# --- a float64 reference on real fragments ---------------------------------------------------------------


def with_random_velocities(notes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = notes.copy()
    out["velocity"] = rng.integers(20, 128, size=notes.size)
    return out


def reference(fragment, exemplar, stretch, transpose_range, mode="near-copy", velocity=False) -> dict:
    """Every (t, d) similarity by the definition (rollmatch.engine's docstring), in float64 with plain loops;
    'contains' takes no share floor: a pattern is contained whole."""
    on, _ = note_steps(fragment, SPB)
    frag = piano_roll(fragment, velocity=velocity).astype(np.float64)[:, on.min() :]
    stretched = exemplar.copy()
    stretched["start"] = (exemplar["start"] - exemplar["start"].min()) * stretch
    stretched["end"] = (exemplar["end"] - exemplar["start"].min()) * stretch
    lo, hi = int(exemplar["pitch"].min()), int(exemplar["pitch"].max()) + 1
    tmpl = piano_roll(stretched, velocity=velocity).astype(np.float64)[lo:hi]
    f_len, e_len = frag.shape[1], tmpl.shape[1]
    energy = (tmpl**2).sum()
    pad = e_len + f_len
    frag_pad = np.zeros((128 + 2 * 64, f_len + 2 * pad))
    frag_pad[64 : 64 + 128, pad : pad + f_len] = frag
    sims = {}
    for t in range(-transpose_range, transpose_range + 1):
        for d in range(-(e_len - 1), f_len):
            under = frag_pad[64 + lo + t : 64 + hi + t, pad + d : pad + d + e_len]  # F on E's box
            corr = float((tmpl * under).sum())
            own = float((under[tmpl > 0] ** 2).sum())
            if e_len <= f_len:  # the window is E's box
                f_w, e_w = float((under**2).sum()), energy
            else:  # the window is E's rows over the fragment's span
                f_w = float((frag_pad[64 + lo + t : 64 + hi + t, pad : pad + f_len] ** 2).sum())
                e_w = float((tmpl[:, max(0, -d) : max(0, f_len - d)] ** 2).sum())
            e_root = math.sqrt(max(e_w, (1.0 if mode == "contains" else PARTIAL_MIN_SHARE) * energy))
            if corr <= 0 or f_w <= 0:
                sims[(t, d)] = 0.0
            elif mode == "contains":
                sims[(t, d)] = corr / (e_root * max(math.sqrt(own), math.sqrt(f_w / CONTAINS_DENSITY)))
            else:
                sims[(t, d)] = corr / (e_root * math.sqrt(f_w))
    return sims


@pytest.mark.parametrize(
    ("modes", "velocity"),
    [
        (("near-copy",) * 3, False),
        (("contains", "near-copy", "contains"), False),
        (("contains", "contains", "near-copy"), True),
    ],
)
def test_engine_equals_a_float64_reference_on_real_fragments(chorale_excerpts, method, modes, velocity):
    # Fragments shorter and longer than the exemplars, so that both windows are exercised, in both modes.
    rng = np.random.default_rng(7)
    stretches = (0.5, 1.0, 1.5)
    exemplars = [with_random_velocities(select_beats(chorale_excerpts[k], 0, 2), rng) for k in (0, 20, 40)]
    fragments = []
    for k, beats in ((60, 3.0), (61, 1.0), (62, 4.0), (63, 1.5)):
        start = float(rng.integers(0, 4))
        fragments.append(with_random_velocities(select_beats(chorale_excerpts[k], start, start + beats), rng))
    fragments.append(transform_notes(exemplars[1], transpose=3, stretch=1.5, shift_beats=0.5))
    bank = TemplateBank(exemplars, SearchSpace(stretches=stretches, velocity=velocity, transpose_range=4), modes=modes)
    r = match(fragments, bank, method=method)
    for b, fragment in enumerate(fragments):
        for k, exemplar in enumerate(exemplars):
            per_stretch = {s: reference(fragment, exemplar, s, 4, modes[k], velocity) for s in stretches}
            best = max(max(sims.values()) for sims in per_stretch.values())
            assert r.similarity[b, k] == pytest.approx(best, abs=1e-5)
            # The reported alignment achieves that best similarity.
            at = per_stretch[float(r.stretch[b, k])][
                (int(r.transpose[b, k]), int(r.shift_steps[b, k]) - int(note_steps(fragment, SPB)[0].min()))
            ]
            assert at == pytest.approx(best, abs=1e-5)
    assert r.similarity[4, 1] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[4, 1], r.shift_steps[4, 1], r.stretch[4, 1]) == (3, 6, 1.5)


@pytest.mark.parametrize("velocity", [False, True])
def test_dense_and_sparse_agree_on_a_real_library(chorale_excerpts, velocity):
    # 60 excerpts: many templates share a shape (pitch rows and length) while holding different notes. With
    # velocities the sparse path's summed spikes are no longer integers, and must still agree.
    rng = np.random.default_rng(11)
    # Every third exemplar is matched in 'contains' mode.
    exemplars = [with_random_velocities(e, rng) for e in chorale_excerpts[:60]]
    modes = ["contains" if k % 3 == 0 else "near-copy" for k in range(60)]
    bank = TemplateBank(exemplars, SearchSpace(stretches=(0.75, 1.0, 1.5), velocity=velocity), modes=modes)
    fragments = [
        with_random_velocities(select_beats(f, 0, beats), rng)
        for f, beats in zip(chorale_excerpts[70:80], [8, 4, 2, 8, 6, 3, 8, 5, 1, 8], strict=True)
    ]
    dense, sparse = (match(fragments, bank, method=m) for m in ("dense", "sparse"))
    assert len(np.unique(bank.shape_of)) < bank.n_templates
    np.testing.assert_allclose(sparse.similarity, dense.similarity, atol=1e-5)
    clear = dense.similarity > 0.6
    for field in ("transpose", "shift_steps", "stretch", "coverage"):
        np.testing.assert_array_equal(getattr(sparse, field)[clear], getattr(dense, field)[clear])


def test_sparse_path_runs_large_batches_in_bounded_chunks(chorale_excerpts, monkeypatch):
    monkeypatch.setattr(engine, "SPARSE_BLOCK_BYTES", 3 * 129 * 200 * 8)  # about three fragments per chunk
    bank = TemplateBank(chorale_excerpts[:20], SearchSpace(stretches=(1.0, 2.0)))
    fragments = [select_beats(f, 0, 2 + (i % 7)) for i, f in enumerate(chorale_excerpts[60:80])]
    chunked = match(fragments, bank, method="sparse")
    monkeypatch.undo()
    np.testing.assert_allclose(chunked.similarity, match(fragments, bank, method="dense").similarity, atol=1e-5)
    assert chunked.similarity.min() > 0  # every fragment was scored, in whatever chunk it fell


# --- invariances on real music ----------------------------------------------------------------------------


def embed(core: np.ndarray, before: np.ndarray, after: np.ndarray, offset: float) -> np.ndarray:
    """``core`` placed at ``offset`` beats, with unrelated music before it and right after it."""
    end = offset + float(core["end"].max())
    return sort_notes(
        np.concatenate(
            [
                select_beats(before, 0, offset),
                transform_notes(core, shift_beats=offset),
                transform_notes(select_beats(after, 0, 4), shift_beats=end),
            ]
        )
    )


@pytest.fixture(scope="module")
def small_bank(chorale_excerpts):
    exemplars = chorale_excerpts[:24:2]  # 12 excerpts of 12 different chorales
    return exemplars, TemplateBank(exemplars)


@pytest.mark.parametrize("stretch", STRETCHES)
def test_exemplar_is_found_transposed_embedded_and_stretched(stretch, small_bank, chorale_excerpts, method):
    exemplars, bank = small_bank
    cases = [(0, -12, 3.0), (5, 7, 5.5), (11, 12, 9.25)]  # (exemplar, transposition, beat offset)
    fragments = [
        embed(
            transform_notes(exemplars[k], transpose=t, stretch=stretch),
            chorale_excerpts[70 + k],
            chorale_excerpts[90 + k],
            offset,
        )
        for k, t, offset in cases
    ]
    r = match(fragments, bank, method=method)
    for b, (k, t, offset) in enumerate(cases):
        assert np.argmax(r.similarity[b]) == k
        assert r.similarity[b, k] >= 0.95
        assert r.transpose[b, k] == t
        assert r.shift_steps[b, k] / SPB == pytest.approx(offset + stretch * exemplars[k]["start"].min())
        assert r.stretch[b, k] == stretch


def test_noisy_copy_is_still_the_top_match_among_110_exemplars(chorale_excerpts, method):
    rng = np.random.default_rng(2026)
    bank = TemplateBank(chorale_excerpts)
    picks = [3, 17, 29, 46, 58, 71, 88, 102]
    truths = [(int(rng.integers(-12, 13)), float(rng.choice(STRETCHES))) for _ in picks]
    fragments = [
        embed(
            transform_notes(perturb_notes(chorale_excerpts[k], rng, drop=0.1, add=0.1), transpose=t, stretch=s),
            chorale_excerpts[(k + 55) % 110],
            chorale_excerpts[(k + 56) % 110],
            4.0,
        )
        for k, (t, s) in zip(picks, truths, strict=True)
    ]
    r = match(fragments, bank, method=method)
    assert bank.n_exemplars == 110
    for b, (k, (t, s)) in enumerate(zip(picks, truths, strict=True)):
        assert np.argmax(r.similarity[b]) == k
        assert (r.transpose[b, k], r.stretch[b, k]) == (t, s)


@pytest.mark.parametrize("offset_steps", [300, 321, 322, 1000])
def test_long_fragment_segments_lose_no_alignment(offset_steps, chorale_excerpts, method):
    # With one 8-beat template the FFT length is 512 and each segment owns 322 shifts; these offsets put the
    # exemplar inside a segment, on both sides of a boundary, and deep in a later segment of a 130-beat piece.
    exemplar = chorale_excerpts[30]
    bank = TemplateBank([exemplar], SearchSpace(stretches=(1.0,)))
    background = np.concatenate([transform_notes(e, shift_beats=8 * i) for i, e in enumerate(chorale_excerpts[80:96])])
    offset = offset_steps / SPB
    fragment = sort_notes(
        np.concatenate(
            [
                select_beats(background, 0, offset),
                transform_notes(exemplar, transpose=2, shift_beats=offset),
                transform_notes(select_beats(background, offset + 8, 130), shift_beats=offset + 8),
            ]
        )
    )
    r = match([fragment], bank, method=method)
    assert r.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert (r.transpose[0, 0], r.shift_steps[0, 0]) == (2, offset_steps)
