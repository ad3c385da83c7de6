import subprocess
import sys

import numpy as np
import pytest

from rollmatch import ParameterError, SearchSpace, TemplateBank, match, select_beats
from rollmatch.backend import array_module, backend_name, gpu_available


def test_import_rollmatch_stays_light():
    code = (
        "import sys, rollmatch; print(sorted(m for m in "
        "('cupy', 'grpc', 'google.protobuf', 'matplotlib', 'music21', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cpu_backend_is_numpy():
    assert array_module("cpu") is np and backend_name(np) == "cpu"


@pytest.mark.skipif(gpu_available(), reason="checks the fallback on a machine without a GPU")
def test_without_a_gpu_auto_falls_back_and_gpu_is_refused():
    assert array_module("auto") is np
    with pytest.raises(ParameterError, match="backend='gpu' needs cupy and a CUDA device"):
        array_module("gpu")


def test_unknown_backend_is_refused():
    with pytest.raises(ParameterError, match="backend='tpu' must be one of auto, cpu, gpu"):
        array_module("tpu")


@pytest.mark.skipif(not gpu_available(), reason="needs cupy and a CUDA device")
@pytest.mark.parametrize("velocity", [False, True])
def test_gpu_engine_equals_cpu_engine_on_real_fragments(chorale_excerpts, velocity):
    # Every third exemplar in 'contains' mode, and fragments shorter and longer than the exemplars, so that both
    # windows and both modes run on the device.
    cupy = array_module("gpu")
    rng = np.random.default_rng(3)
    exemplars = chorale_excerpts[:40]
    if velocity:
        exemplars = [_with_velocities(e, rng) for e in exemplars]
    modes = ["contains" if k % 3 == 0 else "near-copy" for k in range(len(exemplars))]
    fragments = [
        select_beats(f, 0, beats)
        for f, beats in zip(chorale_excerpts[60:72], [8, 2, 4, 8, 3, 8, 1, 6, 8, 5, 8, 2], strict=True)
    ]
    space = SearchSpace(velocity=velocity)
    cpu = match(fragments, TemplateBank(exemplars, space, modes=modes, xp=np))
    gpu = match(fragments, TemplateBank(exemplars, space, modes=modes, xp=cupy))
    np.testing.assert_allclose(gpu.similarity, cpu.similarity, atol=1e-4)
    clear = cpu.similarity > 0.5  # where a real alignment wins, both engines report the same one
    for field in ("transpose", "shift_steps", "stretch"):
        np.testing.assert_array_equal(getattr(gpu, field)[clear], getattr(cpu, field)[clear])
    np.testing.assert_allclose(gpu.coverage[clear], cpu.coverage[clear], atol=1e-9)


def _with_velocities(notes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = notes.copy()
    out["velocity"] = rng.integers(20, 128, size=notes.size)
    return out
