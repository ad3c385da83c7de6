"""The matching engine: normalized FFT cross-correlation of fragments against every exemplar.

For a fragment F and an exemplar template E (the exemplar rendered at one stretch factor and cropped to
its pitch/time extent) the similarity at transposition t and shift d is::

    sim(t, d) = <E, F under E's box at (t, d)> / (|E| * |F under the box|)

a number in [0, 1] by Cauchy-Schwarz. A dense cluster under the box raises the denominator as much as the
numerator, so density alone never makes a match, and extra notes inside the box lower the score while notes
outside it do not. When the template is longer than the fragment the roles swap: the fragment is the
template and slides inside the exemplar, so a piece of an exemplar matches it.

The array code is written once against ``xp`` (numpy or cupy). Correlation runs as a real FFT along time
and, per frequency bin, one complex matrix product of the fragment's transposed pitch rows (a Toeplitz
stack) with the exemplars' conjugate spectra; box energies come from cumulative sums over pitch and time.
Fragments are split into overlap-save segments so the FFT length stays bounded whatever their length.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any

import numpy as np

from . import defaults
from .backend import fft_module, fft_workers, to_device, to_host
from .checks import number, whole_number
from .errors import ParameterError
from .roll import N_PITCHES, check_steps_per_beat, note_steps, note_values, render

#: How ``match`` computes: 'dense' (FFT and matrix products, any array backend), 'sparse' (runs of notes,
#: numpy with numba) or 'auto' (sparse where it can run, else dense). Both give the same results.
METHODS = ("auto", "dense", "sparse")

#: Templates per matrix product; also the granularity of the spectra cache.
TEMPLATE_CHUNK = 128
#: FFT lengths kept in the spectra cache at once.
SPECTRA_CACHE_SIZE = 3
#: Decimals of the similarities the best alignment is chosen on (float32 noise is ~1e-7); reported ones are exact.
SIMILARITY_DECIMALS = 5
#: Bytes of fragment energy tables the sparse path builds at once; larger batches run in chunks.
SPARSE_BLOCK_BYTES = 256 * 1024 * 1024
#: Smallest FFT length used (short fragments against short exemplars).
MIN_FFT_LENGTH = 64


def check_stretches(stretches: Sequence[float]) -> tuple[float, ...]:
    """Validate a stretch set: 1-32 distinct finite factors within [1/8, 8]."""
    values = tuple(float(s) for s in stretches)
    if not values:
        raise ParameterError("stretches must name at least one factor")
    if len(values) > defaults.MAX_STRETCHES:
        raise ParameterError(f"stretches has {len(values)} factors; at most {defaults.MAX_STRETCHES} are allowed")
    for s in values:
        number(s, "stretch", above=0)
        number(s, "stretch", at_least=1 / defaults.MAX_STRETCH, at_most=defaults.MAX_STRETCH)
    if len(set(values)) != len(values):
        raise ParameterError(f"stretches={list(values)} repeats a factor")
    return values


def check_transpose_range(transpose_range: int) -> int:
    """Validate the transposition range R (searching -R..+R semitones)."""
    return whole_number(transpose_range, "transpose_range", at_least=0, at_most=defaults.MAX_TRANSPOSE_RANGE)


@dataclass(frozen=True)
class BestMatches:
    """Best alignment of each of B fragments against each of K exemplars, over all stretches,
    transpositions and shifts. All arrays have shape (B, K) and live on the host."""

    similarity: np.ndarray  #: float64 in [0, 1]; 0 where nothing overlaps
    transpose: np.ndarray  #: int64 semitones added to the exemplar
    shift_steps: np.ndarray  #: int64 fragment step (from the fragment's beat 0) of the exemplar's first onset
    stretch: np.ndarray  #: float64 stretch factor applied to the exemplar


class TemplateBank:
    """Exemplars rendered once at every stretch factor in a shared pitch band, with their conjugate spectra
    cached per FFT length, ready to be matched against any batch of fragments.

    Template m = k * S + s is exemplar k at stretch s; each is cropped to start at its first onset.
    """

    def __init__(
        self,
        exemplars: Sequence[np.ndarray],
        *,
        stretches: Sequence[float] = defaults.STRETCHES,
        steps_per_beat: int = defaults.STEPS_PER_BEAT,
        velocity: bool = False,
        xp: ModuleType = np,
    ) -> None:
        self.xp = xp
        self.stretches = check_stretches(stretches)
        self.steps_per_beat = check_steps_per_beat(steps_per_beat)
        self.velocity = velocity
        self.n_exemplars = len(exemplars)
        for k, notes in enumerate(exemplars):
            if notes.size == 0:
                raise ParameterError(f"exemplar {k} has no notes")
        self.stretch_count = len(self.stretches)
        pitches = np.concatenate([e["pitch"] for e in exemplars]) if exemplars else np.zeros(1, np.int16)
        self.band_lo = int(pitches.min())
        self.band = int(pitches.max()) + 1 - self.band_lo  # P, pitch rows of every template

        rendered = []
        for notes in exemplars:
            origin = notes["start"].min()
            for stretch in self.stretches:
                on, off = note_steps(_stretched(notes, origin, stretch), self.steps_per_beat)
                rendered.append((notes["pitch"].astype(np.int64) - self.band_lo, on, off, note_values(notes, velocity=velocity)))
        self.n_templates = len(rendered)
        length = np.array([off.max() for _, _, off, _ in rendered], dtype=np.int64)
        pitch_lo = np.array([r.min() for r, *_ in rendered], dtype=np.int64)
        pitch_hi = np.array([r.max() + 1 for r, *_ in rendered], dtype=np.int64)
        # Templates are stored sorted by shape (pitch rows and length): the window energies a shape needs do not
        # depend on what the template holds, so each chunk computes them once per shape it contains.
        self.template_of = np.lexsort((length, pitch_hi, pitch_lo))  # stored position -> template k * S + s
        self.length = length[self.template_of]  # steps of each stored template
        self.pitch_lo = pitch_lo[self.template_of]  # band rows, inclusive
        self.pitch_hi = pitch_hi[self.template_of]  # band rows, exclusive
        keys = np.stack([self.pitch_lo, self.pitch_hi, self.length], axis=1)
        self.shapes, self.shape_of = np.unique(keys, axis=0, return_inverse=True)  # (U, 3); stored -> shape, ascending
        self.shape_of = self.shape_of.ravel()
        self.max_length = int(length.max()) if rendered else 1  # T_E
        rolls = np.zeros((self.n_templates, self.band, self.max_length), dtype=np.float32)
        for i, m in enumerate(self.template_of):
            rows, on, off, values = rendered[m]
            rolls[i] = render(rows, on, off, values, (self.band, self.max_length))
        self.norm = np.sqrt((rolls.astype(np.float64) ** 2).sum(axis=(1, 2)))
        self._rolls = rolls
        # Half the energy of the faintest possible cell: a box with less than this holds no note.
        self.min_energy = 0.5 * (1 / 127) ** 2 if velocity else 0.5
        self._spectra: OrderedDict[int, list[Any]] = OrderedDict()
        self._runs: dict[str, np.ndarray] | None = None

    @cached_property
    def rows_cumsum(self) -> Any:
        """(M, P+1, T_E) energy of the rows below each row, per step, on the bank's device (dense path only,
        so built on first use)."""
        rows_cumsum = np.zeros((self.n_templates, self.band + 1, self.max_length), dtype=np.float32)
        rows_cumsum[:, 1:] = (self._rolls * self._rolls).cumsum(axis=1)
        return to_device(self.xp, rows_cumsum)

    def runs(self) -> dict[str, np.ndarray]:
        """The templates as runs of constant value plus energy prefix sums, for the sparse path (built once)."""
        if self._runs is None:
            from . import sparse  # noqa: PLC0415  (imports numba)

            n, band, steps = self._rolls.shape
            row, on, off, value = sparse.runs(self._rolls.reshape(n * band, steps))
            template = row // band
            self._runs = {
                "start": np.searchsorted(template, np.arange(n + 1)).astype(np.int64),
                "row": row % band, "on": on, "off": off, "value": value,
                "sat": sparse.prefix_sums(self._rolls.astype(np.float64) ** 2),
            }
        return self._runs

    def spectra(self, fft_length: int) -> list[Any]:
        """Conjugate spectra of the templates divided by their norms, for one FFT length: chunks of shape
        (L//2+1, P, <=TEMPLATE_CHUNK), so the correlation comes out already divided by |E|.

        Each carries a phase ramp that delays the correlation by T_E - 1 steps, so that output index k is
        shift d = k - (T_E - 1): negative shifts come first and the shifts run in order, with no wrap-around.
        """
        if fft_length in self._spectra:
            self._spectra.move_to_end(fft_length)
            return self._spectra[fft_length]
        xp = self.xp
        fft = fft_module(xp)
        frequency = np.arange(fft_length // 2 + 1)
        delay = to_device(xp, np.exp(-2j * np.pi * frequency * (self.max_length - 1) / fft_length))
        chunks = []
        for m0 in range(0, self.n_templates, TEMPLATE_CHUNK):
            block = to_device(xp, self._rolls[m0 : m0 + TEMPLATE_CHUNK] / self.norm[m0 : m0 + TEMPLATE_CHUNK, None, None].astype(np.float32))
            spectrum = xp.conj(fft.rfft(block, n=fft_length, axis=-1, **fft_workers(xp))) * delay
            chunks.append(xp.ascontiguousarray(spectrum.transpose(2, 1, 0)).astype(xp.complex64))
        self._spectra[fft_length] = chunks
        while len(self._spectra) > SPECTRA_CACHE_SIZE:
            self._spectra.popitem(last=False)
        return chunks


def _stretched(notes: np.ndarray, origin: float, stretch: float) -> np.ndarray:
    out = notes.copy()
    out["start"] = (notes["start"] - origin) * stretch
    out["end"] = (notes["end"] - origin) * stretch
    return out


@dataclass(frozen=True)
class _Fragment:
    """A fragment rendered on the grid and cropped in time to start at its first onset."""

    roll: np.ndarray  # (128, T_b) float32
    first_step: int  # step of the first onset, from the fragment's beat 0
    pitch_lo: int  # absolute MIDI pitch, inclusive
    pitch_hi: int  # absolute MIDI pitch, exclusive
    norm: float


def _prepare_fragment(notes: np.ndarray, steps_per_beat: int, velocity: bool) -> _Fragment | None:
    if notes.size == 0:
        return None
    on, off = note_steps(notes, steps_per_beat)
    first = int(on.min())
    pitch = notes["pitch"].astype(np.int64)
    roll = render(pitch, on - first, off - first, note_values(notes, velocity=velocity), (N_PITCHES, int(off.max()) - first))
    return _Fragment(roll, first, int(pitch.min()), int(pitch.max()) + 1, float(np.sqrt((roll.astype(np.float64) ** 2).sum())))


def _transpositions(transpose_range: int) -> np.ndarray:
    """Transpositions -R..+R ordered 0, -1, +1, -2, ...: both paths take the first maximum they find, so a tie
    goes to the smallest |t|."""
    return np.array(sorted(range(-transpose_range, transpose_range + 1), key=lambda t: (abs(t), t)), dtype=np.int64)


def _fft_length(needed: int) -> int:
    """The smallest length >= ``needed`` whose only prime factors are 2, 3 and 5 (fast for pocketfft and cuFFT
    alike, and up to a third shorter than the next power of two)."""
    import scipy.fft  # noqa: PLC0415  (lazy: import rollmatch stays light)

    return max(MIN_FFT_LENGTH, scipy.fft.next_fast_len(needed, real=True))


def resolve_method(method: str, xp: ModuleType) -> str:
    """'dense' or 'sparse' for ``method`` on array module ``xp``."""
    if method not in METHODS:
        raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
    sparse_possible = xp is np and importlib.util.find_spec("numba") is not None
    if method == "sparse" and not sparse_possible:
        raise ParameterError("method='sparse' needs numpy arrays and numba")
    if method == "auto":
        return "sparse" if sparse_possible else "dense"
    return method


def match(
    fragments: Sequence[np.ndarray],
    bank: TemplateBank,
    *,
    transpose_range: int = defaults.TRANSPOSE_RANGE,
    method: str = "auto",
) -> BestMatches:
    """Best similarity of each fragment (note arrays, beats) against each exemplar in ``bank``.

    Searches every transposition in [-transpose_range, +transpose_range], every time shift and every stretch
    of the bank. Returns (B, K) host arrays; an empty fragment gets similarity 0 everywhere. ``method`` picks
    the computation (see :data:`METHODS`); the results do not depend on it.
    """
    transpose_range = check_transpose_range(transpose_range)
    method = resolve_method(method, bank.xp)
    sims = np.zeros((len(fragments), bank.n_templates))
    trans = np.zeros((len(fragments), bank.n_templates), dtype=np.int64)
    shifts = np.zeros((len(fragments), bank.n_templates), dtype=np.int64)
    prepared = [_prepare_fragment(f, bank.steps_per_beat, bank.velocity) for f in fragments]
    if bank.n_templates and method == "sparse":
        for chunk in _sparse_chunks(prepared):
            _match_sparse(chunk, prepared, bank, transpose_range, sims, trans, shifts)
    elif bank.n_templates:
        for fft_length, group in _segments(prepared, bank).items():
            _match_group(group, prepared, bank, transpose_range, fft_length, sims, trans, shifts)
    return _best_stretch(sims, trans, shifts, bank)


def _sparse_chunks(prepared: Sequence[_Fragment | None]) -> Iterator[list[int]]:
    """Indices of the non-empty fragments in chunks whose sparse tables fit SPARSE_BLOCK_BYTES, shortest
    fragments first so that little of each table is padding."""
    present = sorted((b for b, frag in enumerate(prepared) if frag is not None), key=lambda b: prepared[b].roll.shape[1])
    chunk: list[int] = []
    for b in present:
        if chunk and (len(chunk) + 1) * (N_PITCHES + 1) * (prepared[b].roll.shape[1] + 1) * 8 > SPARSE_BLOCK_BYTES:
            yield chunk
            chunk = []
        chunk.append(b)
    if chunk:
        yield chunk


def _match_sparse(
    present: list[int],
    prepared: Sequence[_Fragment | None],
    bank: TemplateBank,
    transpose_range: int,
    sims: np.ndarray,
    trans: np.ndarray,
    shifts: np.ndarray,
) -> None:
    """The sparse path for the fragments ``present``: runs matched by the compiled kernel."""
    from . import sparse  # noqa: PLC0415  (imports numba)

    frags = [prepared[b] for b in present]
    longest = max(f.roll.shape[1] for f in frags)
    per_fragment = [sparse.runs(f.roll) for f in frags]
    counts = np.array([len(r[0]) for r in per_fragment])
    f_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    f_row_first = np.stack([np.searchsorted(r[0], np.arange(N_PITCHES + 1)) for r in per_fragment]).astype(np.int64)
    squares = np.zeros((len(frags), N_PITCHES, longest))
    for j, f in enumerate(frags):
        squares[j, :, : f.roll.shape[1]] = f.roll.astype(np.float64) ** 2
    t_values = _transpositions(transpose_range)
    t_index = np.empty(t_values.size, dtype=np.int64)
    t_index[t_values + transpose_range] = np.arange(t_values.size)
    template = bank.runs()
    out_sim = np.zeros((len(frags), bank.n_templates))
    out_t = np.zeros((len(frags), bank.n_templates), dtype=np.int64)
    out_d = np.zeros((len(frags), bank.n_templates), dtype=np.int64)
    sparse.match_runs(
        f_start, f_row_first,
        np.concatenate([r[1] for r in per_fragment]), np.concatenate([r[2] for r in per_fragment]),
        np.concatenate([r[3] for r in per_fragment]),
        np.array([f.roll.shape[1] for f in frags], dtype=np.int64),
        np.array([f.pitch_lo for f in frags], dtype=np.int64), np.array([f.pitch_hi for f in frags], dtype=np.int64),
        np.array([f.norm for f in frags]), sparse.prefix_sums(squares),
        template["start"], template["row"], template["on"], template["off"], template["value"],
        bank.length, bank.pitch_lo, bank.pitch_hi, bank.norm, bank.shape_of.astype(np.int64), template["sat"],
        bank.band_lo, bank.band, transpose_range, t_values, t_index, bank.min_energy, 10.0**SIMILARITY_DECIMALS,
        out_sim, out_t, out_d,
    )
    columns = bank.template_of
    for j, b in enumerate(present):
        sims[b, columns] = out_sim[j]
        trans[b, columns] = out_t[j]
        shifts[b, columns] = out_d[j] + prepared[b].first_step


@dataclass(frozen=True)
class _Segment:
    fragment: int  # index into the batch
    offset: int  # fragment step (from the first onset) where this segment's data begins
    lo: int  # owned local shifts: [lo, hi)
    hi: int


def _segments(prepared: Sequence[_Fragment | None], bank: TemplateBank) -> dict[int, list[_Segment]]:
    """Split fragments into overlap-save segments grouped by FFT length.

    A segment owning local shifts [lo, hi) needs fragment data [lo, hi - 1 + T_E) and, to avoid circular
    wrap-around, an FFT length of at least that data length plus T_E - 1.
    """
    span = bank.max_length
    longest = _fft_length(4 * span)
    hop = longest - 2 * span + 2  # owned shifts per segment at the longest FFT length
    groups: dict[int, list[_Segment]] = {}
    for b, frag in enumerate(prepared):
        if frag is None:
            continue
        length = frag.roll.shape[1]
        needed = length + span - 1
        if needed <= longest:
            groups.setdefault(_fft_length(needed), []).append(_Segment(b, 0, -(span - 1), length))
            continue
        for offset in range(0, length, hop):
            lo = -(span - 1) if offset == 0 else 0
            hi = min(hop, length - offset)
            groups.setdefault(longest, []).append(_Segment(b, offset, lo, hi))
    return groups


def _match_group(
    group: list[_Segment],
    prepared: Sequence[_Fragment | None],
    bank: TemplateBank,
    transpose_range: int,
    fft_length: int,
    sims: np.ndarray,
    trans: np.ndarray,
    shifts: np.ndarray,
) -> None:
    """Score every segment of one FFT length against every template; keep each (fragment, template) best."""
    xp = bank.xp
    fft = fft_module(xp)
    spectra = bank.spectra(fft_length)
    n_t = 2 * transpose_range + 1
    t_values = _transpositions(transpose_range)
    row_offset = t_values + transpose_range  # data row of band row 0 at each transposition, (n_t,)
    rows = bank.band + 2 * transpose_range  # fragment rows band_lo - R .. band_hi + R - 1
    toeplitz = to_device(xp, row_offset[:, None] + np.arange(bank.band)[None, :])  # (n_t, P)
    local_shift = np.arange(fft_length) - (bank.max_length - 1)  # shift d of output k (see TemplateBank.spectra)
    src_lo = bank.band_lo - transpose_range  # MIDI pitch of data row 0
    lo, hi = max(src_lo, 0), min(src_lo + rows, N_PITCHES)

    per_block = max(1, defaults.ENGINE_BLOCK_ELEMENTS // (TEMPLATE_CHUNK * n_t * fft_length))
    for s0 in range(0, len(group), per_block):
        block = group[s0 : s0 + per_block]
        frags = [prepared[seg.fragment] for seg in block]
        data = np.zeros((len(block), rows, fft_length), dtype=np.float32)
        for j, (seg, frag) in enumerate(zip(block, frags, strict=True)):
            piece = frag.roll[lo:hi, seg.offset : seg.offset + fft_length - bank.max_length + 1]
            data[j, lo - src_lo : hi - src_lo, : piece.shape[1]] = piece
        data_dev = to_device(xp, data)
        squares = data_dev * data_dev
        rows_cumsum = xp.concatenate([xp.zeros_like(squares[:, :1]), xp.cumsum(squares, axis=1)], axis=1)  # (Bs, rows+1, L)
        spectrum = fft.rfft(data_dev, axis=-1, **fft_workers(xp)).astype(xp.complex64)  # (Bs, rows, F)
        # (F, Bs * n_t, P): for each frequency bin, every segment's pitch rows at every transposition.
        stack = spectrum[:, toeplitz, :].transpose(3, 0, 1, 2).reshape(spectrum.shape[-1], len(block) * n_t, bank.band)
        owned = to_device(xp, np.array([(local_shift >= seg.lo) & (local_shift < seg.hi) for seg in block]))  # (Bs, L)
        frag_len = np.array([f.roll.shape[1] for f in frags])
        for c, chunk in enumerate(spectra):
            m0 = c * TEMPLATE_CHUNK
            m1 = m0 + chunk.shape[-1]
            product = xp.matmul(stack, chunk)  # (F, Bs * n_t, Mc)
            product = product.reshape(product.shape[0], len(block), n_t, -1).transpose(1, 3, 2, 0)
            sim = fft.irfft(product, n=fft_length, axis=-1, **fft_workers(xp))  # (Bs, Mc, n_t, L), over |E|
            sim *= _normalizers(xp, rows_cumsum, row_offset, frags, frag_len, owned, bank, m0, m1, fft_length, t_values)
            flat = sim.reshape(len(block), m1 - m0, -1)
            # Chosen on rounded values, so that alignments tied in exact arithmetic tie here too, whatever the
            # float noise, and the order of the axes decides: the smallest transposition, then the earliest shift.
            best = xp.argmax(xp.round(flat, SIMILARITY_DECIMALS), axis=-1)
            best_sim = np.clip(to_host(xp.take_along_axis(flat, best[..., None], axis=-1)[..., 0]).astype(np.float64), 0.0, 1.0)
            best = to_host(best)
            best_t = t_values[best // fft_length]
            best_shift = local_shift[best % fft_length]
            columns = bank.template_of[m0:m1]
            for j, seg in enumerate(block):
                b = seg.fragment
                better = best_sim[j] > sims[b, columns]
                first = prepared[b].first_step
                sims[b, columns] = np.where(better, best_sim[j], sims[b, columns])
                trans[b, columns] = np.where(better, best_t[j], trans[b, columns])
                shifts[b, columns] = np.where(better, first + seg.offset + best_shift[j], shifts[b, columns])


def _time_cumsum(xp: ModuleType, per_step: Any, left: int, right: int) -> Any:
    """Cumulative sums along the last axis, with ``left`` zeros before and the total repeated ``right`` times
    after, so that a window that starts before step 0 or ends past the last step needs no clipping."""
    steps = per_step.shape[-1]
    out = xp.empty(per_step.shape[:-1] + (left + 1 + steps + right,), dtype=per_step.dtype)
    out[..., : left + 1] = 0
    xp.cumsum(per_step, axis=-1, out=out[..., left + 1 : left + 1 + steps])
    out[..., left + 1 + steps :] = out[..., left + steps : left + steps + 1]
    return out


def _normalizers(
    xp: ModuleType,
    rows_cumsum: Any,
    row_offset: np.ndarray,
    frags: list[_Fragment],
    frag_len: np.ndarray,
    owned: Any,
    bank: TemplateBank,
    m0: int,
    m1: int,
    fft_length: int,
    t_values: np.ndarray,
) -> Any:
    """What turns the correlation over |E| into similarity, shape (Bs, Mc, n_t, L): 1 / |F under the exemplar's
    box|, shared by every template of one shape; where the fragment is the template (it is shorter),
    |E| / (|F| |E under the fragment's box|). Zero outside each segment's owned shifts and over empty boxes.

    Output index k is shift d = k - (T_E - 1), so every window starts one step after the previous one.
    """
    n_b, n_t, n_l = len(frags), t_values.size, fft_length
    lead = bank.max_length - 1
    owned_f = owned.astype(xp.float32)[:, None, None, :]  # (Bs, 1, 1, L)
    # Exemplar as template, per shape: the fragment's energy in the shape's pitch rows at each transposition
    # (a row gather), summed over [d, d + length): cum[k + length] - cum[k] on a cumsum padded by ``lead`` zeros.
    shape_ids = bank.shape_of[m0:m1]
    first_shape = int(shape_ids[0])
    shapes = bank.shapes[first_shape : int(shape_ids[-1]) + 1]  # stored by shape, so these are contiguous
    usable = np.flatnonzero(shapes[:, 2] <= frag_len.max())
    inverse = xp.zeros((n_b, len(shapes), n_t, n_l), dtype=xp.float32)
    if usable.size:
        r0 = to_device(xp, (shapes[usable, 0, None] + row_offset[None, :]).ravel())
        r1 = to_device(xp, (shapes[usable, 1, None] + row_offset[None, :]).ravel())
        rows = rows_cumsum[:, r1]
        rows -= rows_cumsum[:, r0]
        cum = _time_cumsum(xp, rows.reshape(n_b, usable.size, n_t, -1), lead, bank.max_length)
        windows = xp.lib.stride_tricks.sliding_window_view(cum, n_l, axis=-1)  # (Bs, U, n_t, offsets, L), a view
        box = windows[:, to_device(xp, np.arange(usable.size)), :, to_device(xp, shapes[usable, 2]), :].transpose(1, 0, 2, 3)
        box -= cum[..., :n_l]
        inverse[:, to_device(xp, usable)] = _inverse_sqrt(xp, box, bank.min_energy) * owned_f
    out = inverse[:, to_device(xp, shape_ids - first_shape)]  # (Bs, Mc, n_t, L)
    # Fragment as template, where it is shorter than the exemplar: the exemplar's energy under the fragment's
    # box, exemplar steps [-d, length_b - d) and pitch rows shifted by -t. One pass per fragment length.
    lengths = bank.length[m0:m1]
    exemplar_is_template = lengths[None, :] <= frag_len[:, None]  # (Bs, Mc)
    k = np.arange(n_l)
    short = ~exemplar_is_template.all(axis=1)
    for length in np.unique(frag_len[short]):
        bs = np.flatnonzero(short & (frag_len == length))
        ms = np.flatnonzero(~exemplar_is_template[bs].all(axis=0))  # lengths are equal, so one set fits all
        q0 = np.clip(np.array([frags[b].pitch_lo for b in bs])[:, None] - bank.band_lo - t_values[None, :], 0, bank.band)
        q1 = np.clip(np.array([frags[b].pitch_hi for b in bs])[:, None] - bank.band_lo - t_values[None, :], 0, bank.band)
        ex = bank.rows_cumsum[to_device(xp, m0 + ms)]  # (Ms, P+1, T_E)
        rows = ex[:, to_device(xp, q1.ravel())] - ex[:, to_device(xp, q0.ravel())]  # (Ms, Bl * n_t, T_E)
        ex_cum = _time_cumsum(xp, rows, 0, 0)
        start = to_device(xp, np.clip(lead - k, 0, bank.max_length))
        stop = to_device(xp, np.clip(length + lead - k, 0, bank.max_length))
        box = (xp.take(ex_cum, stop, axis=-1) - xp.take(ex_cum, start, axis=-1)).reshape(ms.size, bs.size, n_t, n_l)
        scale = to_device(xp, (bank.norm[m0 + ms][None, :] / np.array([frags[b].norm for b in bs])[:, None]).astype(np.float32))
        bs_dev = to_device(xp, bs)
        value = _inverse_sqrt(xp, box.transpose(1, 0, 2, 3), bank.min_energy) * scale[:, :, None, None] * owned_f[bs_dev]
        out[bs_dev[:, None], to_device(xp, ms)[None, :]] = value
    return out


def _inverse_sqrt(xp: ModuleType, energy: Any, min_energy: float) -> Any:
    """1 / sqrt(energy), and 0 where the box is empty."""
    safe = xp.maximum(energy, min_energy)
    return xp.where(energy > min_energy, 1.0 / xp.sqrt(safe), 0.0).astype(xp.float32)


def _best_stretch(sims: np.ndarray, trans: np.ndarray, shifts: np.ndarray, bank: TemplateBank) -> BestMatches:
    """Reduce templates (k, s) to exemplars k, preferring stretches nearest 1 among ties (within 1e-5)."""
    n_frag, n_ex, n_st = sims.shape[0], bank.n_exemplars, bank.stretch_count
    stretches = np.asarray(bank.stretches)
    order = np.argsort(np.abs(np.log(stretches)), kind="stable")
    # Stretches within 1e-5 of the best tie: float32 noise (up to ~2e-6 with velocities) must not decide
    # between stretches that match equally well in exact arithmetic.
    sim3 = sims.reshape(n_frag, n_ex, n_st)[:, :, order]
    tied = sim3 >= sim3.max(axis=-1, keepdims=True) - 10.0**-SIMILARITY_DECIMALS
    pick = order[np.argmax(tied, axis=-1)]  # (B, K); the first tied stretch is the one nearest 1
    flat = np.arange(n_ex)[None, :] * n_st + pick
    take = lambda a: np.take_along_axis(a, flat, axis=1)  # noqa: E731
    return BestMatches(take(sims), take(trans), take(shifts), stretches[pick])
