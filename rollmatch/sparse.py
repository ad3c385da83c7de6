"""The CPU fast path: the same similarities as the dense FFT engine, from runs of notes instead of spectra.

Piano rolls are about 3% full, so instead of correlating whole matrices this path walks the runs of
constant value in each pitch row: every exemplar run meets every fragment run within the transposition
range and adds its overlap at each shift: a trapezoid, written as the four spikes of its second difference
and summed back while the shifts are scanned (exactly: on binary rolls the values are integers). Window
energies come from prefix sums and are computed once per (fragment, template shape). Ties are broken by the
dense engine's rule (values rounded to the decimals that ``similarity_scale`` gives; the smallest
transposition, then the earliest shift). Compiled with numba; the engine imports this module only when it
takes this path, so ``import rollmatch`` never loads numba.
"""

from __future__ import annotations

import math

import numba
import numpy as np

def runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of constant nonzero value in each row of ``rows`` (R, T): (row, on, off, value), row-major."""
    n_rows, steps = rows.shape
    padded = np.zeros((n_rows, steps + 2), dtype=np.float64)
    padded[:, 1:-1] = rows
    row, edge = np.nonzero(padded[:, 1:] != padded[:, :-1])  # edge k: between step k - 1 and step k
    same = row[1:] == row[:-1]
    row, on, off = row[:-1][same], edge[:-1][same], edge[1:][same]
    value = rows[row, on] if row.size else np.zeros(0)
    keep = value > 0
    return row[keep].astype(np.int64), on[keep].astype(np.int64), off[keep].astype(np.int64), value[keep].astype(np.float64)


def prefix_sums(squares: np.ndarray) -> np.ndarray:
    """Summed-area tables of (..., R, T) with a leading zero row and column: (..., R + 1, T + 1)."""
    out = np.zeros(squares.shape[:-2] + (squares.shape[-2] + 1, squares.shape[-1] + 1), dtype=np.float64)
    out[..., 1:, 1:] = squares.cumsum(axis=-2).cumsum(axis=-1)
    return out


@numba.njit(parallel=True, cache=True, error_model="numpy")  # no zero-division branch per division
def match_runs(
    f_start, f_row_first, f_on, f_off, f_val, f_len, f_lo, f_hi, f_norm, f_sat,
    t_start, t_row, t_on, t_off, t_val, t_len, t_plo, t_phi, t_norm, t_shape, e_sat,
    band_lo, band, transpose_range, t_values, t_index, min_energy, similarity_scale,
    out_sim, out_t, out_d,
):
    """Best (similarity, transposition, shift) of every fragment against every template; see the module."""
    n_frag = f_len.shape[0]
    n_templates = t_len.shape[0]
    n_t = t_values.shape[0]
    longest = 0
    for m in range(n_templates):
        longest = max(longest, t_len[m])
    for b in numba.prange(n_frag):
        frag_len = f_len[b]
        corr = np.zeros((n_t, longest + frag_len + 2))
        inv = np.zeros((n_t, longest + frag_len - 1))
        # The span of shifts each transposition row was touched in; only that is scanned and cleared.
        touched_lo = np.full(n_t, 1 << 30, dtype=np.int64)
        touched_hi = np.full(n_t, -1, dtype=np.int64)
        shape = -1
        for m in range(n_templates):
            length = t_len[m]
            n_d = length + frag_len - 1  # index k is shift d = k - (length - 1)
            exemplar_is_template = length <= frag_len
            if exemplar_is_template and t_shape[m] != shape:
                shape = t_shape[m]  # templates are sorted by shape: this runs once per shape
                for i in range(n_t):
                    r0 = min(max(band_lo + t_plo[m] + t_values[i], 0), 128)
                    r1 = min(max(band_lo + t_phi[m] + t_values[i], 0), 128)
                    for k in range(n_d):
                        d = k - (length - 1)
                        j0 = min(max(d, 0), frag_len)
                        j1 = min(max(d + length, 0), frag_len)
                        e = f_sat[b, r1, j1] - f_sat[b, r0, j1] - f_sat[b, r1, j0] + f_sat[b, r0, j0]
                        inv[i, k] = 1.0 / math.sqrt(e) if e > min_energy else 0.0  # shared by the shape
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
            best = 0.0
            best_key = 0.0
            best_i = 0
            best_k = 0
            scale = similarity_scale / t_norm[m] if exemplar_is_template else similarity_scale / f_norm[b]
            for i in range(n_t):
                if not exemplar_is_template:
                    q0 = min(max(f_lo[b] - t_values[i] - band_lo, 0), band)
                    q1 = min(max(f_hi[b] - t_values[i] - band_lo, 0), band)
                slope = 0.0
                c = 0.0
                for k in range(touched_lo[i], touched_hi[i] + 1):
                    slope += corr[i, k]
                    c += slope
                    corr[i, k] = 0.0  # leave the row clean for the next template
                    if c <= 0.0:
                        continue
                    if exemplar_is_template:
                        x = c * inv[i, k] * scale  # the similarity times similarity_scale
                    else:
                        d = k - (length - 1)
                        j0 = min(max(-d, 0), length)
                        j1 = min(max(frag_len - d, 0), length)
                        e = e_sat[m, q1, j1] - e_sat[m, q0, j1] - e_sat[m, q1, j0] + e_sat[m, q0, j0]
                        x = c * scale / math.sqrt(e) if e > min_energy else 0.0
                    if x + 0.5 < best_key + 1.0:  # cannot round above the best so far
                        continue
                    key = math.floor(x + 0.5)
                    if key > best_key:
                        best_key = key
                        best = x / similarity_scale
                        best_i = i
                        best_k = k
            for i in range(n_t):
                if touched_hi[i] >= 0:  # the closing spikes lie past the last overlapping shift
                    corr[i, touched_hi[i] + 1] = 0.0
                    corr[i, touched_hi[i] + 2] = 0.0
                touched_lo[i] = 1 << 30
                touched_hi[i] = -1
            out_sim[b, m] = min(best, 1.0)
            out_t[b, m] = t_values[best_i]
            out_d[b, m] = best_k - (length - 1)
