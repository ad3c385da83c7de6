"""Novelty and diversity figures: entropies by hand, reuse, and pairwise similarity of real music."""

import math

import numpy as np

from rollmatch import make_notes, transform_notes
from rollmatch.diversity import diversity, entropy_bits, pairwise_similarity, pitch_class_entropy, rhythm_entropy

from .conftest import chorale_voices


def test_entropies_by_hand():
    assert entropy_bits(np.array([1.0, 1.0, 0.0, 2.0])) == 1.5
    assert entropy_bits(np.zeros(3)) == 0.0
    scale = make_notes(range(60, 72), range(12), range(1, 13))  # twelve pitch classes, one beat each
    assert math.isclose(pitch_class_entropy(scale), math.log2(12))
    assert pitch_class_entropy(make_notes([60, 72], [0, 1], [1, 4])) == 0.0  # one pitch class, two octaves
    assert rhythm_entropy(make_notes([60, 62, 64, 65], [0, 1, 2, 3.5], [1, 2, 3.5, 4])) == 1.5  # lengths 1, 1, 1.5, 0.5


def test_diversity_counts_reuse_and_compares_with_the_library():
    notes = chorale_voices("bwv269", 16.0)["Soprano"]
    figures = diversity(notes, ["a", "b", "a", None], [notes])
    assert figures["distinct_exemplars"] == 2 and figures["reuse"] == {"a": 2, "b": 1}
    assert figures["reuse_histogram"] == {"1": 1, "2": 1} and figures["largest_share"] == 0.5
    assert figures["pitch_class_entropy"]["result"] == figures["pitch_class_entropy"]["library"] > 1


def test_pairwise_similarity_sees_a_transposed_copy_and_tells_two_voices_apart():
    parts = chorale_voices("bwv269", 16.0)
    soprano, bass = parts["Soprano"], parts["Bass"]
    sims = pairwise_similarity([soprano, transform_notes(soprano, transpose=5), bass])
    assert sims.shape == (3, 3) and np.allclose(np.diag(sims), 1) and np.allclose(sims, sims.T)
    assert sims[0, 1] > 0.999 and sims[0, 2] < 0.6
