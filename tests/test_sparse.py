"""The sparse kernel's interface: grouped arguments that numba types by name, so a swapped group cannot pass."""

import numba
import numpy as np
import pytest

from rollmatch import TemplateBank, make_notes, match, sparse


@pytest.fixture(scope="module")
def kernel_arguments():
    """The four groups the engine builds for one fragment against two exemplars."""
    bank = TemplateBank([make_notes([60, 64, 67], [0, 1, 2], [1, 2, 3]), make_notes([62, 65], [0, 2], [2, 4])])
    fragment = make_notes([61, 65, 68, 70], [0, 1, 2, 3], [1, 2, 3, 4])
    seen = []
    kernel = sparse.match_runs
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sparse, "match_runs", lambda *groups: (seen.append(groups), kernel(*groups)))
        match([fragment], bank, method="sparse")
    (groups,) = seen
    return groups


def test_the_kernel_writes_its_outputs(kernel_arguments):
    fragments, templates, search, out = kernel_arguments
    assert isinstance(fragments, sparse.FragmentRuns) and isinstance(templates, sparse.TemplateRuns)
    assert isinstance(search, sparse.SearchParameters) and isinstance(out, sparse.Alignments)
    # Written through the namedtuple's arrays, which numba's parallel loops would silently drop.
    assert out.similarity.max() == pytest.approx(1.0) and out.transposition.any()


def test_a_swapped_group_is_refused(kernel_arguments):
    fragments, templates, search, out = kernel_arguments
    fresh = sparse.Alignments(*(np.zeros_like(a) for a in out))
    with pytest.raises(numba.core.errors.TypingError):
        sparse.match_runs(templates, fragments, search, fresh)
    assert not fresh.similarity.any()
