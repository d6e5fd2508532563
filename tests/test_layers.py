"""The layout is the architecture: imports go one way, from the commands down to data,
networks and kernel math. This test reads every module's imports (top-level and inside
functions) and fails when a package imports one of a higher layer or a different package
of its own layer; and no code outside ``objectives/`` and ``tests/`` compares against an
objective's name."""
import ast
from pathlib import Path

import pytest

import objectives

ROOT = Path(__file__).resolve().parents[1]
LAYERS = [  # lowest first; a package may import its own package and any of a lower layer
    {"core"},  # random streams by role, atomic files, digests
    {"data", "models"},  # data sets, networks
    {"objectives"},  # objectives, their registry and the kernel math
    {"engine"},  # run configuration, trainer, objective contract
    {"metrics", "store"},  # metrics workers compute; the record store
    {"cli"},  # the command-line vocabulary
    {"analysis"},  # tables and figures from records
    {"sweeps"},  # training commands (which draw figures at the end)
]
RANK = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def imported_packages(path: Path) -> set[str]:
    """Top-level project packages that the module at ``path`` imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(RANK)


def violations(root: Path = ROOT) -> list[str]:
    """``"file: imports pkg (layer ...)"`` for every import against the layer order."""
    bad = []
    for pkg, rank in RANK.items():
        for path in sorted((root / pkg).rglob("*.py")):
            for other in imported_packages(path) - {pkg}:
                if RANK[other] >= rank:
                    bad.append(f"{path.relative_to(root)}: imports {other} (layer {RANK[other]}, own layer {rank})")
    return sorted(bad)


def test_every_package_is_in_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(RANK), "add new packages to LAYERS"


def test_imports_go_one_way():
    assert violations() == []


def test_a_forbidden_import_is_caught(tmp_path):
    """The check itself: an objective importing the engine (upward) and a module of metrics
    importing the store (sideways) are both reported."""
    for pkg in RANK:
        (tmp_path / pkg).mkdir()
    (tmp_path / "objectives" / "bad.py").write_text("def f():\n    from engine.trainer import Trainer\n")
    (tmp_path / "metrics" / "bad.py").write_text("import store\n")
    (tmp_path / "sweeps" / "fine.py").write_text("import analysis.stability\nfrom store import records\n")
    assert violations(tmp_path) == ["metrics/bad.py: imports store (layer 4, own layer 4)",
                                    "objectives/bad.py: imports engine (layer 3, own layer 2)"]


def name_comparisons(path: Path, names: set[str]) -> list[str]:
    """``file:line`` of every comparison (==, !=, in, not in) with a string constant that is
    an objective's name."""
    hits = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            consts = [n for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
            if any(c.value in names for c in consts):
                hits.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return hits


@pytest.mark.parametrize("pkg", sorted(set(RANK) - {"objectives"}) + ["examples"])
def test_no_code_outside_objectives_branches_on_an_objective_name(pkg):
    names = set(objectives.names())
    assert [h for p in sorted((ROOT / pkg).rglob("*.py")) for h in name_comparisons(p, names)] == []
