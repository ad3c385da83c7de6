"""Array backends: numpy on the CPU or cupy on a GPU, chosen by name, with their FFTs and transfers.

The only module that names cupy; ``import rollmatch`` never imports it.

The engine is written once against an array module ``xp`` (numpy or cupy) and asks this module for
the matching FFT implementation and for host/device transfers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .errors import ParameterError

BACKENDS = ("auto", "cpu", "gpu")
DEFAULT_BACKEND = "auto"


def _import_cupy() -> ModuleType | None:
    try:
        import cupy  # noqa: PLC0415  (kept lazy on purpose)

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # noqa: BLE001  (no package, no driver, no device: all mean "no GPU here")
        return None


def gpu_available() -> bool:
    """True when cupy imports and sees at least one CUDA device."""
    return _import_cupy() is not None


def array_module(backend: str = DEFAULT_BACKEND) -> ModuleType:
    """The array module for ``backend`` ('auto', 'cpu' or 'gpu'); 'auto' picks the GPU when present."""
    if backend not in BACKENDS:
        raise ParameterError(f"backend={backend!r} must be one of {', '.join(BACKENDS)}")
    if backend == "cpu":
        return np
    cupy = _import_cupy()
    if cupy is None:
        if backend == "gpu":
            raise ParameterError("backend='gpu' needs cupy and a CUDA device, and none was found")
        return np
    return cupy


def backend_name(xp: ModuleType) -> str:
    """'cpu' for numpy, 'gpu' for cupy."""
    return "cpu" if xp is np else "gpu"


def fft_module(xp: ModuleType) -> Any:
    """The rfft/irfft provider for ``xp``: scipy.fft on the host (multi-threaded), cupy.fft on the GPU."""
    if xp is np:
        import scipy.fft  # noqa: PLC0415  (scipy.fft only when the CPU FFT is used)

        return scipy.fft
    return xp.fft


def fft_workers(xp: ModuleType) -> dict[str, int]:
    """Extra keyword arguments for the FFT calls: all host cores for scipy, none for cupy."""
    return {"workers": -1} if xp is np else {}


def to_device(xp: ModuleType, array: np.ndarray) -> Any:
    """Copy a host array to ``xp``'s device (a no-op for numpy)."""
    return array if xp is np else xp.asarray(array)


def to_host(array: Any) -> np.ndarray:
    """Copy an array back to the host as numpy (a no-op for numpy)."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)
