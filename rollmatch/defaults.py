"""Every tuning default and size cap, defined once and shared by the library, the CLI and the server."""

from __future__ import annotations

from fractions import Fraction

#: MIDI velocity of a note whose source states none: a JSON note without one, a score note without dynamics, a
#: note sent without one, the notes rollmatch makes up itself (probes, random fragments).
VELOCITY = 90
#: Time resolution of a piano roll. 12 is the smallest that holds sixteenths (3 steps) and eighth-note
#: triplets (4 steps) exactly; sixteenth triplets are 2 steps.
STEPS_PER_BEAT = 12
#: Transpositions searched: every whole number of semitones in [-TRANSPOSE_RANGE, +TRANSPOSE_RANGE].
TRANSPOSE_RANGE = 12
#: Uniform time-stretch factors applied to every exemplar (augmentation > 1, diminution < 1).
STRETCHES: tuple[float, ...] = tuple(
    float(f) for f in (Fraction(1, 2), Fraction(2, 3), Fraction(3, 4), 1, Fraction(4, 3), Fraction(3, 2), 2)
)
#: Similarity at or above which a good exemplar counts as matched (calibrated on exemplars/; see its README).
GOOD_THRESHOLD = 0.83
#: Similarity at or above which a bad exemplar vetoes the fragment (calibrated likewise).
BAD_THRESHOLD = 0.78
#: How an exemplar is matched when its manifest entry and the library name no mode: 'near-copy' (the
#: normalized correlation under the exemplar's box) or 'contains' (its notes are present; other notes allowed).
MODE = "near-copy"
#: Share of a fragment's sounding cells that must lie inside a good match's box for GOOD (measured on the
#: default library and on windows of real chorales; see exemplars/README.md).
MIN_COVERAGE = 0.6
#: In near-copy mode a fragment shorter than an exemplar is matched against the piece of it under the
#: fragment's span, all its voices counted, as if that piece held at least this share of the exemplar's energy:
#: a piece holding less scores at most sqrt(share / PARTIAL_MIN_SHARE), so a lone chord or a bar of a long
#: exemplar is no match. ('contains' mode takes none: a pattern is contained whole.)
PARTIAL_MIN_SHARE = 0.5
#: 'contains' mode ignores extra notes under the exemplar's box until they make the box this many times as
#: full as the exemplar's own matched notes; past that it scores like near-copy times sqrt(this), so a dense
#: cluster, which contains every pattern, still scores at most sqrt(this * the exemplar's density in its box).
CONTAINS_DENSITY = 3.0

# Size caps, checked before anything proportional to them is allocated.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NOTES = 200_000
MAX_BEATS = 8_192.0
#: Most bars a MIDI file's time signatures may lay out; checked before the bar lines are allocated.
MAX_BARS = 65_536
#: Largest time-signature denominator accepted (a 1/64 bar is a sixteenth of a beat).
MAX_TIME_SIGNATURE_DENOMINATOR = 64
#: Windows one ``score --window`` run may cut a piece into.
MAX_WINDOWS = 100_000
MAX_STEPS_PER_BEAT = 96
MAX_STRETCHES = 32
MAX_TRANSPOSE_RANGE = 60
#: Largest stretch factor accepted (its reciprocal is the smallest).
MAX_STRETCH = 8.0

# Service: defaults of 'rollmatch serve' and the limits it enforces per request.
SERVER_HOST = "127.0.0.1"
SERVER_PORT = 50051
#: A batch closes at this many fragments or after this wait, whichever comes first.
BATCH_MAX_FRAGMENTS = 64
BATCH_MAX_WAIT_MS = 5.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_FRAGMENTS_PER_REQUEST = 1_024
MAX_NOTES_PER_FRAGMENT = 10_000
MAX_BEATS_PER_FRAGMENT = 1_024.0
#: All fragments of one request together; bounds the piano rolls a request can make the engine render.
MAX_BEATS_PER_REQUEST = 32_768.0
MAX_CONCURRENT_RPCS = 256
#: Largest ``max_concurrent_rpcs`` a server may be started with, and the longest batch wait (ms).
MAX_CONCURRENT_RPCS_LIMIT = 100_000
MAX_BATCH_WAIT_MS = 10_000.0
MAX_IN_FLIGHT_PER_STREAM = 64
MAX_TOP_K = 64
#: Seconds that streams in flight get to finish after SIGTERM.
SHUTDOWN_GRACE_S = 10.0
#: Seconds between SIGTERM and the transport closing, while health says NOT_SERVING and new calls get a clean
#: UNAVAILABLE (after the transport starts closing, a call racing it can only be cancelled).
SHUTDOWN_NOTICE_S = 1.0
CURATOR_TOKEN_ENV = "ROLLMATCH_CURATOR_TOKEN"
#: Seconds between the server's checks of its library directory for a new version written by another process
#: (a stat of the manifest and of each exemplar file); 0 turns live reloading off.
LIBRARY_POLL_S = 1.0
#: Seconds after which a library version that failed to load is tried again even if nothing changed on disk
#: (a change on disk retries it at the next check).
LIBRARY_RETRY_S = 30.0

#: Similarities within this of each other count as a tie; ties prefer stretch 1 and the smallest transposition.
TIE_TOLERANCE = 1e-6
#: Decimals of the similarities the engine chooses the best alignment on (float32 noise is ~1e-7); reported
#: similarities are exact.
SIMILARITY_DECIMALS = 5
#: Onsets and offsets within this of a half step round up to the next grid step, so that float noise in beat
#: arithmetic never flips a note to the neighbouring step.
STEP_ROUNDING_SLACK = 1e-6
#: Beat differences below this count as none: a bar line against a time-signature change, a pickup against its bar.
BAR_TOLERANCE = 1e-6
#: Working-set budget of one engine block, in array elements (about 4 bytes each).
ENGINE_BLOCK_ELEMENTS = 1 << 22

# Library lint ('rollmatch library check').
#: Two exemplars that each match the other at least this well are near duplicates. Noisy copies of an exemplar
#: (10% of notes dropped, 10% added) score 0.84-0.95 against it; unrelated Bach phrases stay below 0.7.
NEAR_DUPLICATE_SIMILARITY = 0.9
#: Random fragments every exemplar is matched against (see rollmatch/lint.py), their length, and their seed.
RANDOM_FRAGMENTS = 64
#: Most random fragments one check may ask for.
MAX_RANDOM_FRAGMENTS = 4_096
RANDOM_FRAGMENT_BEATS = 8.0
RANDOM_SEED = 2026
#: An exemplar reaching its threshold on at least this fraction of the random fragments matches random material.
RANDOM_MATCH_FRACTION = 0.05
#: Seed of the degenerate probes' random walks (see rollmatch/probes.py).
PROBE_SEED = 2026

# Threshold calibration ('rollmatch library calibrate').
#: Folds of the cross-validation, and the seed that deals the labeled fragments into them.
CALIBRATION_FOLDS = 5
CALIBRATION_SEED = 2026
#: Candidate values per threshold searched at most; larger labeled sets are searched at quantiles.
MAX_CALIBRATION_CANDIDATES = 512
#: Most folds a cross-validation may use.
MAX_CALIBRATION_FOLDS = 100
#: Similarities are compared on this many decimals when candidate thresholds are built (the engine picks
#: alignments on SIMILARITY_DECIMALS), so two fragments closer than that never get a threshold squeezed between
#: them.
CANDIDATE_DECIMALS = 5

# Phrase search ('rollmatch search' and rollmatch.search).
#: Quarter-note beats per bar where none is stated: the bars a search grows (the default library's chorales are
#: in 4/4, 22 of its 24 good exemplars), and the bars drawn for a file without a time signature (a JSON note list).
BEATS_PER_BAR = 4
MAX_BEATS_PER_BAR = 16
#: Bars a search grows when no length is given.
SEARCH_BARS = 8
#: Bars in the sliding window that must stay GOOD as a phrase grows. A window is GOOD when a good exemplar
#: matches it and covers at least MIN_COVERAGE of it, and nothing vetoes it. The default library's phrases are
#: two bars long: a phrase covers about two thirds of a three-bar window and half of a four-bar one.
WINDOW_BARS = 3
#: Beams (partial phrases) kept after each bar, best first.
BEAM_WIDTH = 4
#: Candidate next bars asked of the generator for each beam.
CANDIDATES_PER_BEAM = 16
#: Seed of a search when none is given, so that two runs give the same phrase.
SEARCH_SEED = 0
#: Times a beam may ask the generator for fresh candidates, when backtracking reaches it again.
DRAWS_PER_BEAM = 3
#: Search scores are ranked rounded to this many decimals, so that float noise of the engine can never reorder
#: candidates that tie in exact arithmetic.
SCORE_DECIMALS = 6
#: Candidates a search may score before it stops.
SEARCH_MAX_EVALUATIONS = 20_000
#: Seconds a search may run before it stops.
SEARCH_MAX_SECONDS = 600.0
#: Streamed requests (one candidate each) awaiting an answer at once.
SEARCH_IN_FLIGHT = 48
#: Generator that proposes candidate bars when none is named.
GENERATOR = "variation"
#: Largest search accepted, in bars, and the most candidates, beams, draws and evaluations.
MAX_SEARCH_BARS = 512
MAX_BEAM_WIDTH = 256
MAX_CANDIDATES_PER_BEAM = 1_024
MAX_DRAWS_PER_BEAM = 1_000
MAX_SEARCH_EVALUATIONS = 1_000_000_000
#: Largest window, in bars: with MAX_BEATS_PER_BAR it stays within the service's MAX_BEATS_PER_FRAGMENT.
MAX_WINDOW_BARS = 32
#: Notes one proposed bar may hold.
MAX_NOTES_PER_BAR = 1_000
#: Voices that rollmatch.notes.split_voices follows at most: a texture denser than this shares voices.
MAX_VOICES = 16
#: The novelty ceiling: no window of a search's result may match one good exemplar at this similarity or more
#: (1 turns it off). A window at or above it is a copy of that exemplar, transposed, shifted or stretched.
MAX_COPY = 0.95
#: The longest stretch, in beats, that may copy one exemplar (MaxOrder's k); None leaves it to MAX_COPY.
MAX_COPY_BEATS: float | None = None
#: No good exemplar may explain more than this share of a result's windows.
MAX_REUSE = 0.5
#: Distinct results a search returns, and the most it may be asked for.
SEARCH_RESULTS = 1
MAX_SEARCH_RESULTS = 32
#: Searches run per result asked for, at most, before a search for distinct results gives up.
RESULT_ATTEMPTS = 4
#: Slowest and fastest tempo (quarter notes per minute) a search writes: MIDI's longest quarter note is
#: 16,777,215 microseconds, 3.58 beats a minute.
MIN_TEMPO_BPM = 3.6
MAX_TEMPO_BPM = 1_000.0
#: A search's candidate bar may leap by at most this much (semitones) in a voice across the bar line, unless
#: the good exemplars themselves leap further across a bar line.
MAX_BAR_LEAP = 12
#: With a key asked for, the share of a bar's sounding time that may lie outside the key's scale (the
#: harmonic and melodic minor included): chromatic passing notes pass, a bar in another key does not.
OUT_OF_KEY_SHARE = 0.25
#: markov: the longest context (notes) the variable-order model conditions on, and the MaxOrder bound: no run
#: of more than this many notes of a voice copies the exemplars verbatim.
MARKOV_ORDER = 3
MARKOV_MAX_ORDER = 5
#: The largest order and MaxOrder bound a markov model accepts.
MAX_MARKOV_ORDER = 16
MAX_MARKOV_MAX_ORDER = 64
#: Letters (sections) of a --form such as AABA.
MAX_FORM_SECTIONS = 26
#: MIDI files written by rollmatch: ticks per beat (a multiple of STEPS_PER_BEAT, so every grid step is
#: whole ticks and notes read back exactly) and tempo.
MIDI_TICKS_PER_BEAT = 480
MIDI_TEMPO_BPM = 100.0
#: Most sharps or flats a written key signature may have (one per letter; notation has no more).
MAX_KEY_SHARPS = 7
