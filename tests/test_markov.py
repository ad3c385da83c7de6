"""The markov generator: its model by hand, the MaxOrder bound, and candidates from the default library."""

import numpy as np
import pytest

from rollmatch import make_notes
from rollmatch.errors import GeneratorError, ParameterError
from rollmatch.generators import Context, Material, check_candidates
from rollmatch.markov import MarkovModel, markov, resurface, tokens
from rollmatch.notes import empty_notes

# A voice C D E C D E G (quarters, the G a half): tokens (interval, steps).
LINE = make_notes([60, 62, 64, 60, 62, 64, 67], range(7), [1, 2, 3, 4, 5, 6, 8])


def test_tokens_are_intervals_and_lengths_in_steps():
    assert tokens(LINE, 12) == [(0, 12), (2, 12), (2, 12), (-4, 12), (2, 12), (2, 12), (3, 24)]
    assert tokens(LINE[:1], 12, previous=55) == [(5, 12)]


def test_the_model_backs_off_to_the_longest_context_it_has_seen():
    model = MarkovModel([tokens(LINE, 12)], order=2, max_order=3)
    assert model.distribution([(2, 12), (2, 12)]) == {(-4, 12): 1, (3, 24): 1}  # after two rising steps
    assert model.distribution([(9, 9), (-4, 12)]) == {(2, 12): 1}  # unseen (9, 9): the last token alone
    assert sum(model.distribution([(9, 9)]).values()) == 7  # nothing matches: every token, order 0
    # MaxOrder: no four tokens in a row as the line has them
    assert model.copies([(0, 12), (2, 12), (2, 12), (-4, 12)]) and not model.copies(
        [(0, 12), (2, 12), (2, 12), (3, 24)]
    )
    assert not model.copies([(2, 12), (2, 12), (-4, 12)])  # three may be copied
    with pytest.raises(ParameterError, match="max_order=0"):
        MarkovModel([], max_order=0)


def test_resurfacing_never_copies_more_than_max_order_tokens(default_library):
    material = Material.from_library(default_library)
    model = MarkovModel.from_material(material, order=3, max_order=4)
    rng = np.random.default_rng(0)
    made = 0
    for bar in material.bars[:40]:
        out = resurface(model, bar.notes, bar.voices, Context(empty_notes(), 0, 8, 4, 8, material), rng)
        if out is None:
            continue
        made += 1
        notes, voices, _changed = out
        assert notes["end"].max() <= 4 and set(voices.tolist()) == set(bar.voices.tolist())
        for v in set(voices.tolist()):
            line = tokens(np.sort(notes[voices == v], order="start"), 12)
            assert not any(model.copies(line[: k + 1]) for k in range(len(line)))
    assert made >= 30


def test_markov_proposes_valid_voiced_candidates_from_the_library(default_library):
    material = Material.from_library(default_library)
    context = Context(empty_notes(), 0, 8, 4, 12, material)
    first = markov(context, np.random.default_rng(4))
    again = markov(context, np.random.default_rng(4))
    assert [p.notes.tobytes() for p in first] == [p.notes.tobytes() for p in again]
    assert 0 < len(first) <= 12 and len(check_candidates(first, name="markov", count=12, beats_per_bar=4)) == len(first)
    assert all(p.sources and p.transforms[0].startswith("markov: ") for p in first)
    with pytest.raises(GeneratorError, match="no good exemplars"):
        markov(Context(empty_notes(), 0, 4, 4, 8, Material([], beats_per_bar=4)), np.random.default_rng(0))
