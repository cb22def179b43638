"""Running many episodes and writing their results: the helpers ``isac-market``'s subcommands
and the training script share (a process pool, or Ray, with a progress bar; confidence
intervals; atomic writes)."""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import csv
import io
import math
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from isac_market_env.envs import canonical_env_id
from isac_market_env.market.driver import SequentialTransactionsWarning
from isac_market_env.simulate import simulate
from isac_market_env.validation import check_choice


def env_id_argument(text: str) -> str:
    """argparse type of ``--env``: an env id, or its ``isac_market_env:ID`` form."""
    try:
        return canonical_env_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class Progress:
    """A dependency-free progress report on stderr: a bar with the ETA on a terminal, else
    (a log file, CI) a plain line at every tenth of the runs."""

    def __init__(self, total: int, label: str, terminal: bool | None = None) -> None:
        self.total, self.label, self.done = total, label, 0
        self.started = time.perf_counter()
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.next_line = 0

    def eta_s(self) -> float:
        """Seconds left, from the mean time per run so far."""
        elapsed = time.perf_counter() - self.started
        return elapsed / self.done * (self.total - self.done) if self.done else float("nan")

    def advance(self, note: str = "") -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        eta = "" if self.done >= self.total else f", ETA {self.eta_s():.0f} s"
        if self.terminal:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{self.done}/{self.total} {elapsed:5.1f} s{eta:<12} {note:<28}")
            if self.done >= self.total:
                sys.stderr.write("\n")
        elif self.done * 10 >= self.next_line * self.total or self.done >= self.total:
            while self.next_line * self.total <= self.done * 10:
                self.next_line += 1
            sys.stderr.write(f"{self.label}: {self.done}/{self.total} runs done, "
                             f"{elapsed:.1f} s{eta}\n")
        sys.stderr.flush()


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Worker: one episode, returns its summary (picklable for the process pool); its
    transactions on ``task["episode_workers"]`` threads (1 by default), where the mechanism
    allows (the others run theirs one after the other, as ``--episode-workers`` says)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SequentialTransactionsWarning)
        result = simulate(
            task["mechanism"], scenario=task["scenario"], n_mus=task["n_mus"] or None,
            n_transactions=task["n_transactions"], seed=task["seed"],
            eua_directory=task.get("eua_directory"), workers=task.get("episode_workers", 1),
            scenario_overrides=task.get("scenario_overrides") or {},
            market_overrides=task.get("market_overrides") or {},
            physics_overrides=task.get("physics_overrides") or {})
    return {"mechanism": task["mechanism"], "seed": task["seed"], **result.summary()}


BACKENDS = ("process", "ray")


@dataclass(frozen=True)
class Backend:
    """Where ``run_tasks`` runs: a local process pool (``process``) or Ray (``ray``: a local
    ``ray.init()``, or the cluster at ``address``)."""

    kind: str = "process"
    address: str | None = None

    def __post_init__(self) -> None:
        check_choice("backend", self.kind, BACKENDS)
        if self.address is not None and self.kind != "ray":
            raise ValueError("--address joins a Ray cluster: it goes with --backend ray")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--address`` (``isac-market compare`` and ``experiment``)."""
    parser.add_argument("--backend", choices=BACKENDS, default="process",
                        help="where the runs go: a local process pool of --workers (default) "
                             "or Ray (needs the marl extra)")
    parser.add_argument("--address", default=None,
                        help="with --backend ray: the Ray cluster to join (default: start a "
                             "local Ray with --workers CPUs)")


_BACKEND: contextvars.ContextVar[Backend | None] = contextvars.ContextVar("backend",
                                                                          default=None)


@contextlib.contextmanager
def execution_backend(kind: str = "process", address: str | None = None) -> Iterator[Backend]:
    """Every ``run_tasks`` inside this block runs on ``kind`` (``isac-market``'s ``--backend``
    and ``--address``)."""
    backend = Backend(kind, address)
    token = _BACKEND.set(backend)
    try:
        yield backend
    finally:
        _BACKEND.reset(token)


def _run_on_ray(tasks: list[dict[str, Any]], workers: int, progress: Progress,
                worker: Callable[[dict[str, Any]], dict[str, Any]],
                address: str | None) -> list[dict[str, Any]]:
    """Every task as a Ray task (one CPU each); results in the tasks' order, as the process
    pool's. A local instance gets ``workers`` CPUs and is shut down afterwards."""
    try:
        import ray
    except ImportError as error:
        raise ValueError("--backend ray needs Ray: pip install 'isac-market-env[marl]'"
                         ) from error
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(worker)
        position = {remote.remote(task): i for i, task in enumerate(tasks)}
        waiting = list(position)
        results: list[dict[str, Any]] = [{} for _ in tasks]
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            i = position[done[0]]
            results[i] = ray.get(done[0])
            progress.advance(f"{tasks[i]['mechanism']} seed {tasks[i]['seed']}")
        return results
    finally:
        if started_here:
            ray.shutdown()


def run_tasks(tasks: list[dict[str, Any]], workers: int, label: str,
              worker: Callable[[dict[str, Any]], dict[str, Any]] = run_one
              ) -> list[dict[str, Any]]:
    """Run tasks in a process pool (or inline for one worker), or on Ray inside an
    ``execution_backend("ray")`` block, with a progress bar; the results come in the tasks'
    order whatever order the runs finish in, so that the means summed from them are the same
    to the last bit from one run of an experiment to the next."""
    progress = Progress(len(tasks), label)
    backend = _BACKEND.get()
    if backend is not None and backend.kind == "ray":
        return _run_on_ray(tasks, workers, progress, worker, backend.address)
    results: list[dict[str, Any]] = [{} for _ in tasks]
    if workers <= 1:
        for i, task in enumerate(tasks):
            results[i] = worker(task)
            progress.advance(f"{task['mechanism']} seed {task['seed']}")
        return results
    with ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent) as pool:
        futures = {pool.submit(worker, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            progress.advance(f"{tasks[i]['mechanism']} seed {tasks[i]['seed']}")
    return results


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its Student-t 95% confidence interval (nan for one sample)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    if len(arr) < 2:
        return mean, float("nan")
    half = float(stats.t.ppf(0.975, len(arr) - 1) * arr.std(ddof=1) / math.sqrt(len(arr)))
    return mean, half


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write through a uniquely named temporary file, fsynced, then rename: readers (and a
    rerun after a kill or a power cut) see the old file or the whole new one, never half,
    and two writers of one path never share a temporary file."""
    data = text.encode() if isinstance(text, str) else text  # a CSV keeps its own line ends
    replace_atomic(path, lambda tmp: tmp.write_bytes(data), keep_suffix=False)


def replace_atomic(path: Path, write: Callable[[Path], object], keep_suffix: bool = True) -> None:
    """``write(tmp)`` into a unique temporary file beside ``path``, fsync it, rename it over
    ``path`` (for writers that want a file name: model zips, figures). The temporary name
    keeps ``path``'s suffix for writers that infer the format from it; without
    ``keep_suffix`` it ends in ``.tmp``, so that a glob for ``*.json`` never sees one a kill
    left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                    suffix=path.suffix if keep_suffix else ".tmp")
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as out:
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


def interrupt_on_sigterm() -> None:
    """Treat SIGTERM (``kill``, a batch scheduler's stop, a background job's only signal) as
    Ctrl-C: the training scripts catch KeyboardInterrupt and save a checkpoint."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def die_with_parent() -> None:
    """Worker initializer: end this process when the parent dies (a SIGKILLed experiment
    must not leave workers finishing runs and holding its stdout). Linux's
    PR_SET_PDEATHSIG where available, and everywhere a thread that watches the parent id."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


def write_csv(path: Path, rows: list[dict[str, Any]],
              fieldnames: Sequence[str] | None = None) -> None:
    """``rows`` as CSV, atomically: the columns ``fieldnames`` (other keys left out), or every
    key of the first row. Nothing is written for no rows."""
    if not rows:
        return
    text = io.StringIO()
    if fieldnames is None:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    else:
        writer = csv.DictWriter(text, fieldnames=list(fieldnames), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())
