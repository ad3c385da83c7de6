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

import numba
import numpy as np


def prefix_sums(squares: np.ndarray) -> np.ndarray:
    """Summed-area tables of (..., R, T) with a leading zero row and column: (..., R + 1, T + 1)."""
    out = np.zeros(squares.shape[:-2] + (squares.shape[-2] + 1, squares.shape[-1] + 1), dtype=np.float64)
    out[..., 1:, 1:] = squares.cumsum(axis=-2).cumsum(axis=-1)
    return out


@numba.njit(inline="always", cache=True)
def _keep(x, i, k, best_key, best, best_i, best_k, similarity_scale):
    """The best alignment so far, (key, similarity, transposition index, shift index), after alignment (i, k)
    whose similarity times ``similarity_scale`` is ``x``: it wins only by rounding above the best key, so the
    first of tied alignments, in scan order, stays."""
    if x + 0.5 >= best_key + 1.0:  # else it cannot round above the best so far
        key = math.floor(x + 0.5)
        if key > best_key:
            return key, x / similarity_scale, i, k
    return best_key, best, best_i, best_k


@numba.njit(parallel=True, cache=True, error_model="numpy")  # no zero-division branch per division
def match_runs(
    f_start,
    f_row_first,
    f_on,
    f_off,
    f_val,
    f_len,
    f_sat,
    t_start,
    t_row,
    t_on,
    t_off,
    t_val,
    t_len,
    t_plo,
    t_phi,
    t_energy,
    t_shape,
    t_contains,
    t_time_energy,
    band_lo,
    transpose_range,
    t_values,
    t_index,
    min_energy,
    min_share,
    contains_density,
    support,
    similarity_scale,
    out_sim,
    out_t,
    out_d,
):
    """Best (similarity, transposition, shift) of every fragment against every template.

    B fragments and M templates, each given as runs of constant value (see :func:`rollmatch.roll.runs`);
    steps are grid steps, rows MIDI pitches for fragments and pitch-band rows for templates.

    Parameters
    ----------
    f_start : (B + 1,) int64
        Fragment b's runs are ``f_start[b]:f_start[b + 1]`` of the f_ arrays.
    f_row_first : (B, 129) int64
        Within fragment b's runs (sorted by row), the first run of MIDI pitch q, relative to ``f_start[b]``.
    f_on, f_off, f_val : (runs,) int64, int64, float64
        Each fragment run's first step, the step after its last, and its cell value.
    f_len : (B,) int64
        Steps of each fragment (from its first onset).
    f_sat : (B, 129, T_max + 1) float64
        Summed-area table of each fragment's squared roll (:func:`prefix_sums`), zero-padded in time.
    t_start : (M + 1,) int64
        Template m's runs are ``t_start[m]:t_start[m + 1]`` of the t_ run arrays.
    t_row, t_on, t_off, t_val : (runs,) int64, int64, int64, float64
        Each template run's band row, first step, step after its last, and cell value.
    t_len : (M,) int64
        Steps of each template (from its first onset).
    t_plo, t_phi : (M,) int64
        Each template's band rows [t_plo, t_phi): its pitch extent, the box's rows.
    t_energy : (M,) float64
        Each template's energy |E|^2 (sum of its squared cells).
    t_shape : (M,) int64
        Shape id of each template, equal for equal (t_plo, t_phi, t_len); templates come sorted by shape.
    t_contains : (M,) bool
        True where the template is matched in 'contains' mode, False for 'near-copy'.
    t_time_energy : (M, T_E + 1) float64
        Each template's energy summed over all its rows and over steps [0, j), at column j.
    band_lo : int
        MIDI pitch of band row 0.
    transpose_range : int
        R: transpositions -R..+R semitones are searched.
    t_values : (2R + 1,) int64
        The transpositions in the order ties prefer (0, -1, +1, -2, ...).
    t_index : (2R + 1,) int64
        Position in ``t_values`` of transposition ``t``, at index ``t + R``.
    min_energy : float
        A window holding less energy than this holds no note.
    min_share : float
        ρ: a fragment shorter than the template is judged as if the window held at least this share of |E|^2.
    contains_density : float
        κ: 'contains' mode ignores extra fragment energy in the box up to κ times the matched notes' energy.
    support : bool
        Whether 'contains' templates need the fragment's energy on their own cells accumulated separately
        (velocity-weighted rolls); on binary rolls it equals the correlation itself.
    similarity_scale : float
        10 ** decimals: similarities are compared rounded to this many decimals, so float noise never
        decides between alignments that tie in exact arithmetic.
    out_sim, out_t, out_d : (B, M) float64, int64, int64
        Written: the best similarity, its transposition and its shift (the fragment step where the
        template's first step lands; negative when the template starts before the fragment).
    """
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
