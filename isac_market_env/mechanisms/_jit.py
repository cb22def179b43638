"""Optional numba compilation (the ``fast`` extra) of the market's innermost loops.

A few functions are written twice: with numpy (always available) and with plain loops in the
subset of Python that numba compiles. The loop versions are compiled on first use when numba is
installed and ``ISAC_MARKET_ENV_JIT`` is not ``0``; the two give identical results (tested).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

T = TypeVar("T")


class PerformanceWarning(UserWarning):
    """The market runs without its compiled loops (numba is missing): same results, slower."""


def compiled_loops_enabled() -> bool:
    """The one switch between the compiled loops and their numpy twins: off while
    ``ISAC_MARKET_ENV_JIT=0`` (read at every use, so a test or a user can flip it for one
    block; the results are the same either way)."""
    return os.environ.get("ISAC_MARKET_ENV_JIT", "1") != "0"


def compiled_cache_directory() -> Path | None:
    """Where the compiled loops are cached: ``NUMBA_CACHE_DIR`` when set (numba's own setting),
    else the user's cache directory (``$XDG_CACHE_HOME/isac-market-env/numba``, by default
    ``~/.cache/...``; ``%LOCALAPPDATA%`` on Windows). Never inside the installed package: a
    cache there outlives ``pip uninstall`` and a leftover package directory shadows the next
    install. None when that directory cannot be created or written (a read-only home): the
    loops are then compiled in every process instead of cached."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"])
    else:
        base = Path.home() / ".cache"
    directory = base / "isac-market-env" / "numba"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK | os.X_OK) else None


def numba_jit(parallel: bool = False) -> Callable[[Callable[..., Any]], Any] | None:
    """``numba.njit`` with the package's options, or None when compilation is off or unavailable.

    Compiled code is cached in ``compiled_cache_directory()``, so only the first process pays
    for compilation (~27 s for every kernel of the market; loading them from the cache takes
    under a second). Without numba it warns (``PerformanceWarning``, once: Python shows a
    warning once per place). ``parallel``: compile numba's ``prange`` loops for its threads.
    numba's ``numpy`` error model: a division by zero would give inf or nan instead of raising,
    so no division carries a zero check (the loops never divide by zero; their numpy twins and
    the tests give the same results).
    """
    if not compiled_loops_enabled():
        return None
    try:
        import numba
    except ImportError:
        warnings.warn("numba is not installed, so the market runs its numpy loops: the same "
                      "results, about 30 times slower. pip install 'isac-market-env[fast]' "
                      "compiles them; ISAC_MARKET_ENV_JIT=0 chooses the numpy loops without "
                      "this warning.", PerformanceWarning,
                      stacklevel=1)  # this line: shown once per process
        return None
    directory = compiled_cache_directory()
    if directory is None:
        return cast(Callable[[Callable[..., Any]], Any],
                    numba.njit(cache=False, nogil=True, error_model="numpy",
                               parallel=_parallel_options(parallel)))

    def jit(function: Callable[..., Any]) -> Any:
        # numba binds a function's cache location when it is decorated, from its config's
        # CACHE_DIR: set it for this decoration only, so other numba code keeps its own
        config: Any = numba.config
        saved = config.CACHE_DIR
        config.CACHE_DIR = str(directory)
        try:
            return numba.njit(cache=True, nogil=True, error_model="numpy",
                              parallel=_parallel_options(parallel))(function)
        finally:
            config.CACHE_DIR = saved

    return jit


_SHARED_KERNELS: dict[str, Any] = {}  # the helpers below, compiled once for every module


def shared_kernel(function: Callable[..., Any], jit: Callable[[Callable[..., Any]], Any]
                  ) -> Any:
    """``function``, a helper of this module that several modules' compiled loops call by name
    (``cut``, ``stable_argsort``), compiled once per process with ``jit`` (``numba_jit()``)."""
    if function.__name__ not in _SHARED_KERNELS:
        _SHARED_KERNELS[function.__name__] = jit(function)
    return _SHARED_KERNELS[function.__name__]


def _parallel_options(parallel: bool) -> Any:
    """numba's ``parallel`` option: only the explicit ``prange`` loops, or nothing (numba
    would otherwise run each array expression, such as ``np.zeros``, as a parallel loop of its
    own: a thread wake-up each, slower than the expression on these small arrays)."""
    if not parallel:
        return False
    return {"prange": True, "comprehension": False, "setitem": False, "reduction": False,
            "numpy": False, "stencil": False, "fusion": False}


def numba_prange() -> Any:
    """numba's ``prange`` (for the threaded loops, which are only ever compiled)."""
    import numba
    return numba.prange


prange: Any = range  # numba's ``prange`` once ``threads_available`` compiles the probe
_THREAD_LAYER: dict[str, Any] = {}  # the process that started numba's threads, and their layer


def threads_available() -> bool:
    """Compiled loops may run on several threads here (``threads`` > 1 in the matching).

    That needs numba's threads on a thread-safe layer, TBB or OpenMP: not numba's own
    ``workqueue``, which is neither thread-safe nor quick to start (~75 us per parallel loop
    here, ~2 us with OpenMP). GNU OpenMP's threads do not survive ``fork``, so a process forked
    from one that started them (a process pool's worker) keeps its loops on one thread. The
    first call starts numba's threads (a parallel probe, cached like the other loops)."""
    if not _THREAD_LAYER:
        jit = numba_jit(parallel=True)
        if jit is None:
            return False
        import numba
        global prange
        prange = numba.prange
        jit(_thread_probe)(np.zeros(2))
        _THREAD_LAYER.update(pid=os.getpid(), layer=numba.threading_layer())
    layer = _THREAD_LAYER["layer"]
    return compiled_loops_enabled() and (
        layer == "tbb" or (layer == "omp" and _THREAD_LAYER["pid"] == os.getpid()))


def _thread_probe(x: Any) -> None:
    """A parallel loop that starts numba's threads (``threads_available``)."""
    for i in prange(len(x)):
        x[i] += 1.0


def compile_or_warn(build: Callable[[], T], what: str) -> T | None:
    """Run ``build`` (which compiles and warms up); on failure warn and fall back to numpy."""
    try:
        return build()
    except Exception as err:  # a numba/numpy pairing numba cannot compile for
        warnings.warn(f"numba could not compile the {what} ({err!r}); using the numpy version "
                      "(same results, slower)", RuntimeWarning, stacklevel=4)
        return None


def compile_with_example(function: Callable[..., T], example: tuple[Any, ...],
                         what: str) -> Callable[..., T] | None:
    """``function`` compiled with numba for the argument types of ``example`` (run on it once),
    or None when numba is off or missing, or cannot compile it (warned)."""
    jit = numba_jit()
    if jit is None:
        return None

    def build() -> Callable[..., T]:
        kernel = jit(function)
        kernel(*example)
        return cast(Callable[..., T], kernel)

    return compile_or_warn(build, what)


def sequential_sums(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sums over the last axis added left to right, as the compiled loops add them (numpy's
    ``sum`` adds pairwise and ``@`` in its BLAS's order, which can differ in the last bit)."""
    return x.cumsum(axis=-1)[..., -1] if x.shape[-1] else np.zeros(x.shape[:-1])


def stable_argsort(key: Any, order: Any) -> None:
    """``order[:] = np.argsort(key, kind="stable")`` in loops, for numba (compiled only):
    insertion sort for the short keys of the market's selections and contract sets (faster than
    numba's merge sort there, and the same order: a stable sort's order is unique)."""
    n = len(key)
    if n > 48:
        order[:] = np.argsort(key, kind="mergesort")
        return
    for i in range(n):
        k = key[i]
        j = i
        while j > 0 and key[order[j - 1]] > k:
            order[j] = order[j - 1]
            j -= 1
        order[j] = i


def cut(buffer: Any, at: int, size: int) -> tuple[Any, int]:
    """The ``size`` items of ``buffer`` from ``at`` (a view) and the position after them: the
    compiled loops cut their small arrays from one buffer (one allocation costs ~15 ns; a
    selection needs a few dozen arrays)."""
    return buffer[at:at + size], at + size
