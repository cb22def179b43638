"""Every script in examples/ runs (small sizes via ISAC_MARKET_EXAMPLES_SMALL=1), so none rots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NEEDS = {"train_bidder.py": "stable_baselines3", "plot_comparison.py": "matplotlib",
         "render_frames.py": "matplotlib"}
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))  # every script, as it is added


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script: str, tmp_path: Path) -> None:
    if script in NEEDS:
        pytest.importorskip(NEEDS[script])
    env = {**os.environ, "ISAC_MARKET_EXAMPLES_SMALL": "1"}
    done = subprocess.run([sys.executable, str(EXAMPLES / script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip()
