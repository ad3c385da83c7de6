"""The phrase search: its pure parts by hand, then small real searches, in this process and through a server on
127.0.0.1."""

from dataclasses import replace

import numpy as np
import pytest
from rollmatch.server.app import BackgroundServer, ServerConfig

from rollmatch import Scorer, make_notes, select_beats, windows
from rollmatch.client import Client, RemoteScorer
from rollmatch.errors import ParameterError, SearchError
from rollmatch.generators import Material, Proposal, transpose_bar, variation
from rollmatch.search import Novelty, PhraseSearch, SearchSettings, _Level, append_bar, parse_form, window_spans
from rollmatch.verdict import Match, Outcome, Verdict

from .conftest import REPO

# Small searches, so that each takes seconds. In four bars the last phrase explains the last three windows, more
# than the default max_reuse of half of four: a result this short needs reuse allowed.
SMALL = SearchSettings(bars=4, beam=4, candidates=16, seed=3, novelty=Novelty(max_reuse=1.0))


# --- pure parts -------------------------------------------------------------------------------------------


def spans(bar, bars, window_bars):
    return [(s.start, s.end, s.strict) for s in window_spans(bar, bars, window_bars)]


def test_window_spans_are_the_windows_a_bar_completes():
    assert spans(0, 8, 3) == [(0, 3, False)]  # still short: only must not be vetoed
    assert spans(1, 8, 3) == [(0, 3, False)]
    assert spans(2, 8, 3) == [(0, 3, True)]
    assert spans(5, 8, 3) == [(3, 6, True)]
    assert spans(7, 8, 3) == [(5, 8, True), (6, 9, True), (7, 10, True)]  # the last bar completes the tail windows
    assert spans(1, 2, 4) == [(0, 4, True), (1, 5, True)]


def test_window_spans_cover_exactly_the_windows_score_cuts():
    bars, window_bars = 7, 3
    piece = make_notes(range(60, 60 + bars), [4 * i for i in range(bars)], [4 * i + 1 for i in range(bars)])
    cut = {(int(s) // 4, int(e) // 4) for s, e, _ in windows(piece, window_beats=4 * window_bars, hop_beats=4)}
    checked = {(s.start, s.end) for bar in range(bars) for s in window_spans(bar, bars, window_bars) if s.strict}
    assert checked == cut


def test_parse_form_cuts_equal_sections_and_finds_repeats():
    sections = parse_form("aaba", 8)
    assert [(s.letter, s.start, s.bars, s.first, s.repeat) for s in sections] == [
        ("A", 0, 2, 0, False),
        ("A", 2, 2, 0, True),
        ("B", 4, 2, 4, False),
        ("A", 6, 2, 0, True),
    ]
    assert [(s.letter, s.start, s.bars) for s in parse_form(None, 5)] == [("A", 0, 5)]


@pytest.mark.parametrize(
    ("form", "bars", "message"),
    [
        ("AABA", 6, "bars=6 does not split into the 4 sections of form='AABA'; give a multiple of 4"),
        ("A-B", 6, "form='A-B' must be letters"),
        ("", 6, "must be letters"),
        ("A" * 27, 27, "has 27 sections; at most 26"),
    ],
)
def test_parse_form_refuses_what_it_cannot_cut(form, bars, message):
    with pytest.raises(ParameterError, match=message):
        parse_form(form, bars)


def test_append_bar_places_the_bar_and_snaps_to_the_midi_grid():
    piece = make_notes([60], [0], [4])
    bar = make_notes([62, 64], [0, 1 / 3], [1 / 3, 4])
    out, voices = append_bar(piece, np.array([0]), Proposal(bar, np.array([1, 0])), 1, 4)
    assert out["start"].tolist() == [0, 4, 4 + 160 / 480] and out["end"].tolist() == [4, 4 + 160 / 480, 8]
    assert voices.tolist() == [0, 1, 0]  # each note keeps its voice through the sort


def test_levels_hand_out_every_beams_first_draw_before_any_second():
    level = _Level(["a", "b", "c"])
    assert level.next_group(2, 2) == [("a", 0), ("b", 0)]
    assert level.next_group(2, 2) == [("c", 0), ("a", 1)]
    assert level.next_group(2, 2) == [("b", 1), ("c", 1)]
    assert level.next_group(2, 2) == []


# --- real searches ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def critic(default_library):
    """The critic a search scores through in this process."""
    return Scorer(default_library, backend="cpu")


@pytest.fixture(scope="module")
def client():
    with (
        BackgroundServer(ServerConfig(library=REPO / "exemplars", port=0, backend="cpu")) as server,
        Client(server.target) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def material(default_library):
    return Material.from_library(default_library)


@pytest.fixture(scope="module")
def bad_bar(default_library):
    """The default library's one-bar 'parallel-fifths-inner' exemplar."""
    return dict(zip((e.id for e in default_library.exemplars), default_library.notes(), strict=True))[
        "parallel-fifths-inner"
    ]


class ReversedStream:
    """A client whose streamed answers arrive in the reverse of the order they were asked in."""

    def __init__(self, client):
        self.client = client

    def score_stream(self, batches, **options):
        return reversed(list(self.client.score_stream(batches, **options)))

    def __getattr__(self, name):
        return getattr(self.client, name)


def test_a_search_grows_a_phrase_whose_every_window_is_good(critic, material, default_library):
    result = PhraseSearch(critic, variation, material=material, name="variation", settings=SMALL).run()
    assert result.complete and result.stopped == "length reached" and result.bars == 4
    assert result.evaluations > 0 and result.to_dict()["evaluations"] == result.evaluations
    assert float(result.notes["end"].max()) > 12  # the last bar sounds
    # scored again here, by a local engine, window by window: three-bar windows, each mostly one good phrase
    cut = windows(result.notes, window_beats=12, hop_beats=4)
    assert len(cut) == 4 == len(result.windows)
    verdicts = Scorer(default_library, backend="cpu").score([w for _, _, w in cut])
    assert [v.outcome for v in verdicts] == [Outcome.GOOD] * 4
    assert all(v.good.coverage >= default_library.config.min_coverage - 1e-6 for v in verdicts)
    assert [w.verdict.outcome for w in result.windows] == [Outcome.GOOD] * 4
    assert result.to_dict()["exemplars_matched"]


def test_the_same_seed_gives_the_same_phrase_locally_or_through_a_server_whatever_order_answers_arrive_in(
    critic, client, material
):
    first = PhraseSearch(critic, variation, material=material, name="variation", settings=SMALL).run()
    remote = RemoteScorer(ReversedStream(client))
    again = PhraseSearch(remote, variation, material=material, name="variation", settings=SMALL).run()
    assert first.notes.tobytes() == again.notes.tobytes()
    assert (first.evaluations, first.origins) == (again.evaluations, again.origins)
    assert [w.verdict for w in first.windows] == [w.verdict for w in again.windows]


def test_a_generator_of_vetoed_material_ends_with_a_clear_message(critic, material, bad_bar):
    def vetoed(context, rng):
        return [transpose_bar(bad_bar, int(t)) for t in rng.choice(np.arange(-6, 7), size=context.count, replace=False)]

    search = PhraseSearch(
        critic, vetoed, material=material, name="fifths", settings=replace(SMALL, max_evaluations=500, candidates=6)
    )
    with pytest.raises(SearchError) as caught:
        search.run()
    message = str(caught.value)
    assert message.startswith("the search gave up: no candidate survived; generator 'fifths'")
    assert "VETOED" in message and "vetoed most often by parallel-fifths-inner" in message
    assert "UNMATCHED" not in message
    assert 0 < search.evaluations <= 500


def test_the_evaluation_budget_stops_a_search(critic, material, bad_bar):
    def vetoed(context, rng):  # within the library's register, so that every candidate is scored
        return [transpose_bar(bad_bar, int(t)) for t in rng.choice(np.arange(-3, 3), size=context.count, replace=False)]

    search = PhraseSearch(
        critic, vetoed, material=material, name="fifths", settings=replace(SMALL, max_evaluations=4, candidates=6)
    )
    with pytest.raises(SearchError, match=r"the evaluation budget of 4 ran out before any bar survived: .*'fifths'"):
        search.run()
    assert search.evaluations <= 4
    # with material that can grow, the budget leaves the best phrase so far, marked incomplete
    partial = PhraseSearch(
        critic, variation, material=material, name="variation", settings=replace(SMALL, max_evaluations=150, bars=8)
    ).run()
    assert not partial.complete and partial.stopped == "evaluation budget of 150"
    assert 1 <= partial.bars < 8 and partial.evaluations <= 150
    with pytest.raises(SearchError, match=r"the time budget of 1e-09 s ran out before any bar survived"):
        PhraseSearch(critic, variation, material=material, settings=replace(SMALL, max_seconds=1e-9)).run()


def test_a_form_repeats_or_varies_its_sections_and_checks_every_window(critic, material):
    # Sections of two bars, the default library's phrase length: a repeated section is a repeated phrase, which
    # the three-bar windows judge GOOD; a repeated lone bar would not be most of any window.
    result = PhraseSearch(
        critic, variation, material=material, name="variation", settings=replace(SMALL, form="AABA", bars=8, seed=1)
    ).run()
    assert result.complete and [w.verdict.outcome for w in result.windows] == [Outcome.GOOD] * 8
    report = result.to_dict()
    assert [(s["letter"], s["start_bar"], s.get("repeats_bar")) for s in report["sections"]] == [
        ("A", 0, None),
        ("A", 2, 0),
        ("B", 4, None),
        ("A", 6, 0),
    ]
    sources = [o.source for o in result.origins]
    assert sources[:2] == sources[4:6] == ["generated"] * 2 and set(sources[2:4] + sources[6:]) <= {
        "repeat",
        "variation",
    }
    assert "repeat" in sources
    for bar in (2, 3, 6, 7):
        origin = result.origins[bar]
        assert origin.of_bar == bar % 2
        if origin.source == "repeat":  # a repeat is the earlier bar, transposed by what it says
            earlier, here = (
                select_beats(result.notes, 4 * (bar % 2), 4 * (bar % 2) + 4),
                select_beats(result.notes, 4 * bar, 4 * bar + 4),
            )
            assert np.array_equal(here["pitch"], earlier["pitch"] + origin.transpose)
            assert np.array_equal(here["start"], earlier["start"]) and np.array_equal(here["end"], earlier["end"])


def test_a_search_continues_its_start(critic, material, default_library):
    opening = dict(zip((e.id for e in default_library.exemplars), default_library.notes(), strict=True))[
        "bwv101.7-phrase1"
    ]
    result = PhraseSearch(critic, variation, material=material, name="variation", start=opening, settings=SMALL).run()
    assert result.complete and result.bars == 4
    assert [o.source for o in result.origins] == ["start", "start", "generated", "generated"]
    assert select_beats(result.notes, 0, 8).tobytes() == select_beats(opening, 0, 8).tobytes()
    with pytest.raises(ParameterError, match="the start is 2 bars long; bars=2 must be more"):
        PhraseSearch(critic, variation, material=material, start=opening, settings=SearchSettings(bars=2))


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"bars": 0}, "bars=0 must be a whole number within 1-512"),
        ({"beam": 0}, "beam=0"),
        ({"candidates": 5000}, "candidates=5000"),
        ({"window_bars": 0}, "window_bars=0"),
        ({"seed": -1}, "seed=-1"),
        ({"max_seconds": 0}, "max_seconds=0 must be > 0"),
        ({"beats_per_bar": 3}, "material cut into bars of 4 beats, but beats_per_bar=3"),
    ],
)
def test_settings_are_checked_before_searching(critic, material, option, message):
    with pytest.raises(ParameterError, match=message):
        PhraseSearch(critic, variation, material=material, settings=SearchSettings(**option))


def test_the_material_is_the_libraries_good_exemplars_in_bars(material, default_library):
    good = [e.id for e in default_library.exemplars if e.label.value == "good"]
    assert [e for e, _ in material.exemplars] == good
    assert {b.exemplar for b in material.bars} == set(good)
    assert all(b.notes["end"].max() <= 4 for b in material.bars)


def copies_only(context, rng):
    """A generator that can only copy: each exemplar's bars as they are, going on with the phrase in progress."""
    material = context.material
    going_on = [material.successor(i) for i, _ in material.find(context.bar_notes(-1))] if context.bar else []
    picks = [i for i in going_on if i is not None] or list(
        rng.choice(material.openings, size=context.count, replace=False)
    )
    return [Proposal(material.bars[i].notes, material.bars[i].voices) for i in picks[: context.count]]


def test_a_generator_that_can_only_copy_gives_up_naming_the_copy_ceiling(critic, material):
    search = PhraseSearch(critic, copies_only, material=material, name="copier", settings=SMALL)
    with pytest.raises(SearchError) as caught:
        search.run()
    message = str(caught.value)
    assert message.startswith("the search gave up: no candidate survived; generator 'copier'")
    assert "copies (a window matched one good exemplar at or above the copy ceiling, max_copy=0.95)" in message
    assert search.rejected["copy"] > 0 and set(search.rejected) <= {"copy", "register", "voice-leading", "UNMATCHED"}
    assert search.evaluations < 500  # it ran out of candidates, not of budget: it did not hang
    # with the ceiling off, the same copies are GOOD: the ceiling alone stopped them
    copied = PhraseSearch(
        critic,
        copies_only,
        material=material,
        name="copier",
        settings=replace(SMALL, novelty=Novelty(max_copy=1, max_reuse=1)),
    ).run()
    assert copied.complete and max(w.verdict.nearest.similarity for w in copied.windows) > 0.99


def test_novelty_settings_are_checked_once():
    with pytest.raises(ParameterError, match=r"max_copy=0 must be in \(0, 1\]"):
        Novelty(max_copy=0)
    with pytest.raises(ParameterError, match=r"max_reuse=1\.5 must be"):
        Novelty(max_reuse=1.5)
    with pytest.raises(ParameterError, match=r"max_copy_beats=-1 must be in \(0, 1024\]"):
        Novelty(max_copy_beats=-1)


def test_max_copy_beats_scores_the_stretches_ending_in_each_new_bar(critic, material):
    # smaller still: every candidate is scored on up to 30 stretches as well as its windows
    search = PhraseSearch(
        critic,
        variation,
        material=material,
        settings=replace(SMALL, bars=3, beam=2, candidates=8, novelty=Novelty(max_copy_beats=3, max_reuse=1)),
    )
    assert search._copy_stretches(0) == [(0.0, 4.0)]
    stretches = search._copy_stretches(2)  # ending on beats 9-12, 4 to 12 beats long
    assert (5.0, 9.0) in stretches and (0.0, 12.0) in stretches and (8.0, 12.0) in stretches
    assert len(stretches) == len(set(stretches)) == 6 + 7 + 8 + 9
    result = search.run()
    # every 4-beat stretch, anywhere in the result, is below the ceiling: none copies an exemplar for more than 3 beats
    assert result.complete and max(w.longest_copy_beats for w in result.windows) <= 3


def test_every_generated_bar_must_lie_inside_a_good_match(critic, material):
    search = PhraseSearch(critic, variation, material=material, settings=replace(SMALL, bars=8))
    length = search._exemplar_beats["bwv101.7-phrase1"]
    assert length == 8
    good = Verdict(Outcome.GOOD, 1.9, Match("bwv101.7-phrase1", 0.9, 0, 4.0, 1.0, 0.66, 0.83), None, 0.6)
    assert search._placed(2, good) == {3, 4}  # a window from bar 2 whose match starts a bar in: bars 3 and 4
    half = Verdict(Outcome.GOOD, 1.9, Match("bwv101.7-phrase1", 0.9, 0, 2.0, 0.5, 0.66, 0.83), None, 0.6)
    assert search._placed(0, half) == {0, 1}  # stretched by 1/2 it sounds in beats 2-6: half of bar 0, half of bar 1
    short = Verdict(Outcome.GOOD, 1.9, Match("bwv101.7-phrase1", 0.9, 0, 3.0, 0.5, 0.66, 0.83), None, 0.6)
    assert search._placed(0, short) == {1}  # beats 3-7: a quarter of bar 0, three quarters of bar 1
    assert search._placed(0, Verdict(Outcome.UNMATCHED, 0.5, good.good, None, 0.6)) == frozenset()
    # once bar 4 is appended, every window holding bars 0-2 has been judged; the last bar settles them all
    assert list(search._settled(4)) == [0, 1, 2] and list(search._settled(7)) == list(range(8))


def test_a_search_follows_the_critics_thresholds_unless_it_asks_for_its_own_coverage(critic, material):
    # None: each call is judged by the thresholds the critic has then (a server's may change mid-search)
    assert PhraseSearch(critic, variation, material=material, settings=SMALL).thresholds is None
    own = PhraseSearch(critic, variation, material=material, settings=replace(SMALL, min_coverage=0.4))
    assert own.thresholds == critic.thresholds.overridden(min_coverage=0.4)
