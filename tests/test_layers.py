"""Layering (docs/model.md): nothing below envs/ imports gymnasium; no global numpy RNG."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "isac_market_env"
CORE = ["physics", "model", "mechanisms", "market", "scenarios", "metrics"]


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_does_not_import_gymnasium() -> None:
    files = [f for layer in CORE for f in (PACKAGE / layer).rglob("*.py")]
    files += [PACKAGE / "config.py", PACKAGE / "simulate.py"]
    assert files
    for path in files:
        assert not imports_of(path) & {"gymnasium", "gym", "stable_baselines3", "torch"}, path


def test_no_global_numpy_random() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for banned in ("np.random.seed", "np.random.rand(", "np.random.uniform(",
                       "np.random.randint(", "np.random.choice(", "np.random.normal("):
            assert banned not in text, f"{path}: {banned}"


def test_citation_file_is_valid_yaml_with_the_paper() -> None:
    import yaml  # the test extra

    citation = yaml.safe_load((PACKAGE.parent / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["title"] == "isac-market-env"
    assert citation["preferred-citation"]["title"].startswith("Future Resource Bank for ISAC")
    from isac_market_env import __version__

    assert citation["version"] == __version__
