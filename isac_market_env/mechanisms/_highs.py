"""Calls into HiGHS, one at a time, with its C-level debug prints kept off the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

# one HiGHS solve at a time per process (``Market.run(workers=N)`` runs transactions on
# threads): descriptor 1 is redirected once, never saved while redirected; HiGHS's shared
# state is never entered twice; two time-limited solves never share the cores (each would
# find less by its limit than in a serial run)
_SOLVING = threading.RLock()


@contextlib.contextmanager
def highs_solve() -> Iterator[None]:
    """Around every HiGHS call: hold the process's HiGHS lock (one solve at a time) and
    redirect file descriptor 1 to /dev/null (HiGHS writes some messages with printf);
    meanwhile other threads' prints to stdout are dropped too."""
    with _SOLVING:
        try:
            sys.stdout.flush()
            saved = os.dup(1)
        except (OSError, ValueError):  # no real stdout (e.g. some notebook kernels)
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
