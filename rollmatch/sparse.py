"""The CPU fast path: the same similarities as the dense FFT engine, from runs of notes instead of spectra.

Piano rolls are about 3% full, so instead of correlating whole matrices this path walks the runs of
constant value in each pitch row: every exemplar run meets every fragment run within the transposition
range and adds its overlap at each shift: a trapezoid, written as the four spikes of its second difference
and summed back while the shifts are scanned (exactly: on binary rolls the values are integers). Window
energies come from prefix sums and are computed once per (fragment, template shape). The similarity at each
alignment is the engine's (see :mod:`rollmatch.engine`), for both match modes. Ties are broken by the dense
engine's rule (values rounded to the decimals that ``similarity_scale`` gives; the smallest transposition,
then the earliest shift). Compiled with numba; the engine imports this module only when it takes this path,
so ``import rollmatch`` never loads numba.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np


def prefix_sums(squares: np.ndarray) -> np.ndarray:
    """Summed-area tables of (..., R, T) with a leading zero row and column: (..., R + 1, T + 1)."""
    out = np.zeros((*squares.shape[:-2], squares.shape[-2] + 1, squares.shape[-1] + 1), dtype=np.float64)
    out[..., 1:, 1:] = squares.cumsum(axis=-2).cumsum(axis=-1)
    return out


class FragmentRuns(NamedTuple):
    """B fragments as runs of constant value (:func:`rollmatch.roll.runs`), rows MIDI pitches, sorted by row.

    Parameters
    ----------
    start : (B + 1,) int64
        Fragment b's runs are ``start[b]:start[b + 1]`` of the run arrays.
    row_first : (B, 129) int64
        Within fragment b's runs, the first run of MIDI pitch q (row q), relative to ``start[b]``; column 128
        is the run count, so pitch q's runs end where pitch q + 1's begin.
    on : (runs,) int64, grid steps
        Each run's first step, from the fragment's first onset.
    off : (runs,) int64, grid steps
        The step after each run's last.
    value : (runs,) float64
        Each run's cell value: 1, or velocity / 127 on velocity-weighted rolls.
    length : (B,) int64, grid steps
        Steps of each fragment, from its first onset.
    energy_table : (B, 129, T_max + 1) float64, squared cell values
        Summed-area table of each fragment's squared roll (:func:`prefix_sums`), zero-padded in time to the
        longest fragment's T_max steps.
    """

    start: np.ndarray
    row_first: np.ndarray
    on: np.ndarray
    off: np.ndarray
    value: np.ndarray
    length: np.ndarray
    energy_table: np.ndarray


class TemplateRuns(NamedTuple):
    """M templates (the exemplars rendered at each stretch) as runs, with the bank's geometry; stored sorted
    by shape, in :class:`rollmatch.engine.TemplateBank`'s stored order.

    Parameters
    ----------
    start : (M + 1,) int64
        Template m's runs are ``start[m]:start[m + 1]`` of the run arrays.
    row : (runs,) int64, band rows
        Each run's row in the bank's pitch band (MIDI pitch ``band_lo + row``).
    on : (runs,) int64, grid steps
        Each run's first step, from the template's first onset.
    off : (runs,) int64, grid steps
        The step after each run's last.
    value : (runs,) float64
        Each run's cell value: 1, or velocity / 127 on velocity-weighted rolls.
    length : (M,) int64, grid steps
        Steps of each template, from its first onset (T_E at most).
    pitch_lo : (M,) int64, band rows
        Each template's lowest row, inclusive: the bottom of its box.
    pitch_hi : (M,) int64, band rows
        Each template's highest row plus one, exclusive: the top of its box.
    energy : (M,) float64, squared cell values
        Each template's energy |E|^2, the sum of its squared cells.
    shape : (M,) int64
        Shape id of each template, equal for equal (pitch_lo, pitch_hi, length) and ascending: the fragment's
        window energies are computed once per shape.
    contains : (M,) bool
        True where the template is matched in 'contains' mode, False for 'near-copy'.
    time_energy : (M, T_E + 1) float64, squared cell values
        Each template's energy summed over all its rows and over steps [0, j), at column j.
    band_lo : int, MIDI pitch
        The pitch of band row 0.
    """

    start: np.ndarray
    row: np.ndarray
    on: np.ndarray
    off: np.ndarray
    value: np.ndarray
    length: np.ndarray
    pitch_lo: np.ndarray
    pitch_hi: np.ndarray
    energy: np.ndarray
    shape: np.ndarray
    contains: np.ndarray
    time_energy: np.ndarray
    band_lo: int


class SearchParameters(NamedTuple):
    """What the kernel searches and how it normalizes and compares alignments.

    Parameters
    ----------
    transpose_range : int, semitones
        R: transpositions -R..+R are searched.
    transpositions : (2R + 1,) int64, semitones
        The transpositions in the order ties prefer (0, -1, +1, -2, ...).
    transposition_index : (2R + 1,) int64
        Position in ``transpositions`` of transposition t, at index ``t + R``.
    min_energy : float, squared cell values
        A window holding less energy than this holds no note.
    min_share : float, share of |E|^2 in (0, 1]
        ρ: a fragment shorter than a near-copy template is judged as if the window held at least this share
        of the template's energy (:data:`rollmatch.defaults.PARTIAL_MIN_SHARE`).
    contains_density : float, ratio >= 1
        κ: 'contains' mode ignores extra fragment energy in the box up to κ times the matched notes' energy
        (:data:`rollmatch.defaults.CONTAINS_DENSITY`).
    support : bool
        Whether 'contains' templates need the fragment's energy on their own cells accumulated separately
        (velocity-weighted rolls); on binary rolls it equals the correlation itself.
    similarity_scale : float
        10 ** decimals: similarities are compared rounded to this many decimals, so that float noise never
        decides between alignments that tie in exact arithmetic.
    """

    transpose_range: int
    transpositions: np.ndarray
    transposition_index: np.ndarray
    min_energy: float
    min_share: float
    contains_density: float
    support: bool
    similarity_scale: float


class Alignments(NamedTuple):
    """The kernel's output, written in place: each (fragment, template) pair's best alignment.

    Parameters
    ----------
    similarity : (B, M) float64, in [0, 1]
        The best similarity.
    transposition : (B, M) int64, semitones
        Its transposition.
    shift : (B, M) int64, grid steps
        Its shift: the fragment step (from the fragment's first onset) where the template's first step lands;
        negative when the template starts before the fragment.
    """

    similarity: np.ndarray
    transposition: np.ndarray
    shift: np.ndarray


@numba.njit(inline="always", cache=True)
def _keep(
    x: float, i: int, k: int, best_key: float, best: float, best_i: int, best_k: int, similarity_scale: float
) -> tuple[float, float, int, int]:
    """The best alignment so far, (key, similarity, transposition index, shift index), after alignment (i, k)
    whose similarity times ``similarity_scale`` is ``x``: it wins only by rounding above the best key, so the
    first of tied alignments, in scan order, stays."""
    if x + 0.5 >= best_key + 1.0:  # else it cannot round above the best so far
        key = math.floor(x + 0.5)
        if key > best_key:
            return key, x / similarity_scale, i, k
    return best_key, best, best_i, best_k


@numba.njit(parallel=True, cache=True, error_model="numpy")  # no zero-division branch per division
def match_runs(fragments: FragmentRuns, templates: TemplateRuns, search: SearchParameters, out: Alignments) -> None:
    """Best (similarity, transposition, shift) of every fragment against every template, written into ``out``.

    B fragments and M templates, each given as runs of constant value (see :func:`rollmatch.roll.runs`).

    Parameters
    ----------
    fragments : FragmentRuns
        The B fragments' runs and energy tables.
    templates : TemplateRuns
        The M templates' runs and the bank's geometry, templates sorted by shape.
    search : SearchParameters
        What is searched (transpositions) and how alignments are normalized and compared.
    out : Alignments
        Written: each (fragment, template) pair's best alignment.
    """
    # Every field leaves its tuple here, before the parallel loop: inside numba.prange, writes to an array reached
    # through a namedtuple are lost (numba issues 5872, 7135 and 10338, still open in 0.68), and plain locals
    # compile the loop exactly as before the arguments were grouped.
    f_start = fragments.start
    f_row_first = fragments.row_first
    f_on = fragments.on
    f_off = fragments.off
    f_val = fragments.value
    f_len = fragments.length
    f_sat = fragments.energy_table
    t_start = templates.start
    t_row = templates.row
    t_on = templates.on
    t_off = templates.off
    t_val = templates.value
    t_len = templates.length
    t_plo = templates.pitch_lo
    t_phi = templates.pitch_hi
    t_energy = templates.energy
    t_shape = templates.shape
    t_contains = templates.contains
    t_time_energy = templates.time_energy
    band_lo = templates.band_lo
    transpose_range = search.transpose_range
    t_values = search.transpositions
    t_index = search.transposition_index
    min_energy = search.min_energy
    min_share = search.min_share
    contains_density = search.contains_density
    support = search.support
    similarity_scale = search.similarity_scale
    out_sim = out.similarity
    out_t = out.transposition
    out_d = out.shift
    n_frag = f_len.shape[0]
    n_templates = t_len.shape[0]
    n_t = t_values.shape[0]
    root_density = math.sqrt(contains_density)
    scale_squared = similarity_scale * similarity_scale
    longest = 0
    for m in range(n_templates):
        longest = max(longest, t_len[m])
    for b in numba.prange(n_frag):
        frag_len = f_len[b]
        corr = np.zeros((n_t, longest + frag_len + 2))
        on_cells = np.zeros((n_t, longest + frag_len + 2)) if support else np.zeros((1, 1))
        inv = np.zeros((n_t, longest + frag_len - 1))  # 1 / sqrt(fragment energy in the box), per shift
        inv_rows = np.zeros(n_t)  # the same for a box spanning the whole fragment
        inv_piece = np.zeros(longest + frag_len - 1)  # 1 / Ê per shift, where the fragment is the shorter
        # The span of shifts each transposition row was touched in; only that is scanned and cleared.
        touched_lo = np.full(n_t, 1 << 30, dtype=np.int64)
        touched_hi = np.full(n_t, -1, dtype=np.int64)
        shape = -1
        for m in range(n_templates):
            length = t_len[m]
            n_d = length + frag_len - 1  # index k is shift d = k - (length - 1)
            exemplar_is_template = length <= frag_len
            if t_shape[m] != shape:
                shape = t_shape[m]  # templates are sorted by shape: this runs once per shape
                for i in range(n_t):
                    r0 = min(max(band_lo + t_plo[m] + t_values[i], 0), 128)
                    r1 = min(max(band_lo + t_phi[m] + t_values[i], 0), 128)
                    if exemplar_is_template:  # the box spans the template's steps at each shift
                        for k in range(n_d):
                            d = k - (length - 1)
                            j0 = min(max(d, 0), frag_len)
                            j1 = min(max(d + length, 0), frag_len)
                            e = f_sat[b, r1, j1] - f_sat[b, r0, j1] - f_sat[b, r1, j0] + f_sat[b, r0, j0]
                            inv[i, k] = 1.0 / math.sqrt(e) if e > min_energy else 0.0
                    else:  # the box spans the whole fragment
                        e = f_sat[b, r1, frag_len] - f_sat[b, r0, frag_len]
                        inv_rows[i] = 1.0 / math.sqrt(e) if e > min_energy else 0.0
            contains = t_contains[m]
            on_own_cells = support and contains
            for tr in range(t_start[m], t_start[m + 1]):
                pitch = band_lo + t_row[tr]
                a1 = t_on[tr]
                b1 = t_off[tr]
                for q in range(max(pitch - transpose_range, 0), min(pitch + transpose_range, 127) + 1):
                    i = t_index[q - pitch + transpose_range]
                    for fr in range(f_start[b] + f_row_first[b, q], f_start[b] + f_row_first[b, q + 1]):
                        a2 = f_on[fr]
                        b2 = f_off[fr]
                        weight = t_val[tr] * f_val[fr]
                        first = a2 - b1 + length  # index of the first shift with any overlap
                        touched_lo[i] = min(touched_lo[i], first)
                        touched_hi[i] = max(touched_hi[i], b2 - a1 + length - 2)
                        # The overlap of two runs over the shifts is a trapezoid: it rises by one step per
                        # shift to the shorter run's length, stays there, and falls back. Its second difference
                        # is four spikes, integrated twice by the scan below: 4 writes instead of one per shift.
                        short = min(b1 - a1, b2 - a2)
                        flat = max(b1 - a1, b2 - a2) - short + 1
                        corr[i, first] += weight
                        corr[i, first + short] -= weight
                        corr[i, first + short + flat - 1] -= weight
                        corr[i, first + 2 * short + flat - 1] += weight
                        if on_own_cells:  # the fragment's energy on the template's cells: the same trapezoid
                            own = f_val[fr] * f_val[fr]
                            on_cells[i, first] += own
                            on_cells[i, first + short] -= own
                            on_cells[i, first + short + flat - 1] -= own
                            on_cells[i, first + 2 * short + flat - 1] += own
            inv_whole = 1.0 / math.sqrt(t_energy[m])
            partial = not exemplar_is_template and not contains  # a pattern is contained whole: Ê = |E|
            if partial:
                # The exemplar's energy under the fragment's span depends on the shift only: once per template.
                floor = min_share * t_energy[m]
                for k in range(n_d):
                    d = k - (length - 1)
                    j0 = min(max(-d, 0), length)
                    j1 = min(max(frag_len - d, 0), length)
                    inv_piece[k] = 1.0 / math.sqrt(max(t_time_energy[m, j1] - t_time_energy[m, j0], floor))
            best = 0.0
            best_key = 0.0
            best_i = 0
            best_k = 0
            for i in range(n_t):
                slope = 0.0
                c = 0.0
                if exemplar_is_template and not contains:
                    # The common case, kept branch-light: the box is the template's, so 1 / sqrt(F_W) is shared
                    # by its shape and |E| is fixed.
                    scale = similarity_scale * inv_whole
                    for k in range(touched_lo[i], touched_hi[i] + 1):
                        slope += corr[i, k]
                        c += slope
                        corr[i, k] = 0.0  # leave the row clean for the next template
                        best_key, best, best_i, best_k = _keep(
                            c * inv[i, k] * scale, i, k, best_key, best, best_i, best_k, similarity_scale
                        )
                    continue
                if contains and not on_own_cells:
                    # 'contains' on binary rolls, where S = c: x <= sqrt(c) / |E|, so most shifts are skipped before
                    # the square root.
                    bound = inv_whole * inv_whole * scale_squared
                    for k in range(touched_lo[i], touched_hi[i] + 1):
                        slope += corr[i, k]
                        c += slope
                        corr[i, k] = 0.0
                        limit = best_key + 0.5
                        if c * bound < limit * limit:
                            continue
                        inv_f = inv[i, k] if exemplar_is_template else inv_rows[i]  # else the window spans the fragment
                        x = c * inv_whole * similarity_scale / max(math.sqrt(c), 1.0 / (inv_f * root_density))
                        best_key, best, best_i, best_k = _keep(
                            x, i, k, best_key, best, best_i, best_k, similarity_scale
                        )
                    continue
                # The rest: near-copy over a fragment shorter than the template, and velocity-weighted 'contains'.
                own_slope = 0.0
                own_energy = 0.0
                for k in range(touched_lo[i], touched_hi[i] + 1):
                    slope += corr[i, k]
                    c += slope
                    corr[i, k] = 0.0
                    if on_own_cells:
                        own_slope += on_cells[i, k]
                        own_energy += own_slope
                        on_cells[i, k] = 0.0
                    if c <= 0.0:
                        continue
                    inv_f = inv[i, k] if exemplar_is_template else inv_rows[i]
                    if contains:
                        x = (
                            c
                            * inv_whole
                            * similarity_scale
                            / max(math.sqrt(max(own_energy, 0.0)), 1.0 / (inv_f * root_density))
                        )
                    else:
                        x = c * inv_piece[k] * inv_f * similarity_scale
                    best_key, best, best_i, best_k = _keep(x, i, k, best_key, best, best_i, best_k, similarity_scale)
            for i in range(n_t):
                if touched_hi[i] >= 0:  # the closing spikes lie past the last overlapping shift
                    corr[i, touched_hi[i] + 1] = 0.0
                    corr[i, touched_hi[i] + 2] = 0.0
                    if on_own_cells:
                        on_cells[i, touched_hi[i] + 1] = 0.0
                        on_cells[i, touched_hi[i] + 2] = 0.0
                touched_lo[i] = 1 << 30
                touched_hi[i] = -1
            out_sim[b, m] = min(best, 1.0)
            out_t[b, m] = t_values[best_i]
            out_d[b, m] = best_k - (length - 1)
