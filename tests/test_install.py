"""The first run of a new user: where compiled code is cached, and what gets installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "isac_market_env"

COMPILE_ONE = textwrap.dedent("""
    from isac_market_env.mechanisms._jit import compiled_cache_directory, numba_jit
    jit = numba_jit()
    def double(x):
        return 2 * x
    assert jit(double)(21) == 42
    print(compiled_cache_directory())
""")


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "compile_one.py"
    script.write_text(code)
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("NUMBA_CACHE_DIR", "ISAC_MARKET_ENV_JIT")}
    environment.update(env)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def _cache_files(directory: Path) -> set[Path]:
    return {p for pattern in ("*.nbi", "*.nbc") for p in directory.rglob(pattern)}


def test_compiled_code_is_cached_in_the_user_cache_not_the_package(tmp_path: Path) -> None:
    """A cache inside the installed package outlives ``pip uninstall`` and the leftover
    directory shadows the next install; it goes to the user's cache directory instead."""
    pytest.importorskip("numba")
    before = _cache_files(PACKAGE)
    done = _run(COMPILE_ONE, tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    assert not _cache_files(tmp_path / "__pycache__")  # not beside the compiled source
    assert Path(done.stdout.strip()) == tmp_path / "cache" / "isac-market-env" / "numba"
    assert list((tmp_path / "cache" / "isac-market-env" / "numba").rglob("*.nbi"))
    assert _cache_files(PACKAGE) == before
    # numba's own setting still wins
    done = _run(COMPILE_ONE, tmp_path, NUMBA_CACHE_DIR=str(tmp_path / "mine"))
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "mine").rglob("*.nbi"))


def test_an_unwritable_cache_directory_compiles_without_caching(tmp_path: Path) -> None:
    """No writable cache (a read-only home): compile in every process, write nowhere."""
    pytest.importorskip("numba")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    before = _cache_files(PACKAGE)
    done = _run(COMPILE_ONE, tmp_path, XDG_CACHE_HOME=str(blocker / "cache"))
    assert done.returncode == 0, done.stderr
    assert not _cache_files(tmp_path)
    assert done.stdout.strip() == "None"
    assert _cache_files(PACKAGE) == before
