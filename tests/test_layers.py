"""Layering: each part of the package imports only the parts below it (no circle, nothing
imports the command line), nothing below envs/ imports gymnasium; no global numpy RNG."""

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


# lowest first; a module may import its own part and the parts of lower layers, at run time
# (imports under ``if TYPE_CHECKING:`` are annotations only)
LAYERS = [["validation"], ["config"], ["physics", "scenarios", "memory"], ["model"],
          ["mechanisms"], ["metrics"], ["market"], ["simulate"], ["envs"], ["baselines"], ["runs"],
          ["evaluate", "experiments"], ["seed_experiments"], ["cli"], ["__main__", "__init__"]]


def package_imports(path: Path) -> set[str]:
    """The parts of ``isac_market_env`` that ``path`` imports at run time."""
    tree = ast.parse(path.read_text())
    annotations_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                        and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                        for node in ast.walk(block)}
    parts: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "isac_market_env":
                parts.add(pieces[1] if len(pieces) > 1 else "__init__")
    return parts


def layering_violations(package: Path) -> list[str]:
    rank = {part: level for level, parts in enumerate(LAYERS) for part in parts}
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        part = relative.parts[0].removesuffix(".py")
        assert part in rank, f"{relative}: add its part to LAYERS"
        for imported in package_imports(path) - {part}:
            if imported == "__init__" and part == "__init__":
                continue
            if rank.get(imported, len(LAYERS)) >= rank[part]:
                found.append(f"{relative} imports {imported}")
    return found


# the envs are views of the market's episode driver: no mechanism, no scenario of their own
NOT_IMPORTED_BY = {"envs": {"mechanisms", "scenarios"}}


def test_each_part_imports_only_lower_layers() -> None:
    assert layering_violations(PACKAGE) == []
    for part, banned in NOT_IMPORTED_BY.items():
        for path in (PACKAGE / part).rglob("*.py"):
            assert not package_imports(path) & banned, path


def test_the_layering_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The check itself: the market importing the envs (upwards) is reported."""
    import shutil

    copy = tmp_path / "isac_market_env"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    market = copy / "market" / "market.py"
    market.write_text(market.read_text() + "\nfrom isac_market_env.envs import ENV_IDS\n")
    assert layering_violations(copy) == ["market/market.py imports envs"]


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
