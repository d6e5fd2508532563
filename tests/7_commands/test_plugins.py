"""Objectives from outside the package: a plugin file through the stability sweep (its
worker processes load it from the task), a plugin module by dotted name, an installed
package's entry points, and broken plugins."""
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

import objectives
import store
from sweeps.stability import main as stability

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''"""Moment matching: each run's generator matches its own batch's mean and spread."""
from objectives import Objective, register


@register
class Moments(Objective):
    name = "NAME"
    defaults = {"toy": {"lr": 1e-2}, "image": {"lr": 1e-3}}

    def __init__(self, factory, noise, hp):
        super().__init__(factory, noise, hp)
        self.opt = self.add_optimizer("generator", self.generator.parameters())

    def step(self, real):
        x = real[0].flatten(2)
        fake = self.generator(self.noise(x.shape[1])).flatten(2)
        loss = ((fake.mean(1) - x.mean(1)).pow(2) + (fake.std(1) - x.std(1)).pow(2)).sum(-1)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        return {"loss": loss.detach()}
'''


def plugin_source(name: str, decorated: bool = True) -> str:
    source = PLUGIN.replace("NAME", name)
    return source if decorated else source.replace("@register\n", "")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


pytestmark = pytest.mark.usefixtures("isolated_registry")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_plugin_file_runs_through_the_stability_sweep(tmp_path, capsys, jobs):
    """With --jobs 2 the cells train in worker processes, which load the plugin named in
    each task; its display name reaches the tables."""
    plugin = write(tmp_path / "moments.py", plugin_source("moments").replace(
        'name = "moments"', 'name = "moments"\n    display_name = "Moments"'))
    out = tmp_path / "out"
    code = stability(["--model", "moments", "--plugin", str(plugin), "--preset", "smoke", "--samples", "500",
                      "--jobs", jobs, "--out", str(out)])
    assert code == 0
    assert "| Moments " in capsys.readouterr().out  # the printed summary table
    root, = (out / "stability").glob("*/ring2d")
    summary = pd.read_csv(root / "tables" / "summary.csv").set_index("objective")
    assert list(summary.index) == ["Moments"] and summary.loc["Moments", ["successful", "runs"]].tolist() == [0, 4]
    assert summary.loc["Moments", "crashed"] == 0
    cells = pd.read_csv(root / "tables" / "cells.csv")
    assert len(cells) == 4 and set(cells["model"]) == {"moments"} and set(cells["status"]) == {"ok"}
    figure = matplotlib.image.imread(root / "figures" / "samples_moments.png")
    assert figure.ndim == 3 and min(figure.shape[:2]) > 100
    assert (root / "figures" / "heatmap_hq_fraction.png").is_file()


def test_editing_a_plugin_file_trains_its_runs_again(tmp_path, capsys):
    """A record's identity holds a digest of its objective's source file: the same sweep
    run again trains nothing, but after a constant in the plugin changes (not a
    hyperparameter, not its version) it trains again, replacing the old code's record."""
    plugin = write(tmp_path / "moments.py", plugin_source("moments-edit"))
    argv = ["--model", "moments-edit", "--plugin", str(plugin), "--preset", "smoke", "--noise-dims", "2",
            "--widths", "20", "--samples", "300", "--no-figures", "--out", str(tmp_path / "out")]
    assert stability(argv) == 0
    run, = store.record_dirs(tmp_path / "out")
    old, old_samples = store.read(run), (run / "samples.npy").read_bytes()
    assert len(old.config["objective_digest"]) == 12
    capsys.readouterr()
    assert stability(argv) == 0
    assert "1 cells (1 already finished), 0 stack(s) to train" in capsys.readouterr().err

    plugin.write_text(plugin_source("moments-edit").replace("- x.std(1)", "- 0.5 * x.std(1)"))
    objectives.registry.unregister("moments-edit")  # what a new process does: load the file as it is now
    assert stability(argv) == 0
    assert "1 cells (0 already finished), 1 stack(s) to train" in capsys.readouterr().err
    new = store.read(run)
    assert new.config["objective_digest"] != old.config["objective_digest"] and new.key != old.key
    assert {k: v for k, v in new.config.items() if k != "objective_digest"} == \
        {k: v for k, v in old.config.items() if k != "objective_digest"}
    assert (run / "samples.npy").read_bytes() != old_samples  # the edited code trained it


def test_plugin_module_by_dotted_name_loads_once(tmp_path, monkeypatch):
    write(tmp_path / "extpkg_dotted" / "__init__.py", "")
    write(tmp_path / "extpkg_dotted" / "moments.py", plugin_source("moments-dotted"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert objectives.load_plugin("extpkg_dotted.moments") == ["moments-dotted"]
        assert objectives.load_plugin("extpkg_dotted.moments") == ["moments-dotted"]  # a no-op
        assert objectives.get("moments-dotted").__module__ == "extpkg_dotted.moments"
    finally:
        for module in ("extpkg_dotted.moments", "extpkg_dotted"):
            sys.modules.pop(module, None)


def test_plugin_files_with_the_same_stem_do_not_clash(tmp_path):
    a = write(tmp_path / "a" / "moments.py", plugin_source("moments-a"))
    b = write(tmp_path / "b" / "moments.py", plugin_source("moments-b"))
    assert objectives.load_plugin(str(a)) == ["moments-a"]
    assert objectives.load_plugin(str(b)) == ["moments-b"]
    assert objectives.get("moments-a") is not objectives.get("moments-b")


def test_a_plugin_is_credited_only_with_its_own_objectives(tmp_path):
    """A plugin that loads another one while it imports is credited with its own objectives."""
    other = write(tmp_path / "other.py", plugin_source("other"))
    mine = write(tmp_path / "mine.py", f"import objectives\n\nobjectives.load_plugin({str(other)!r})\n"
                 + plugin_source("mine"))
    assert objectives.load_plugin(str(mine)) == ["mine"]
    assert objectives.load_plugin(str(other)) == ["other"]
    assert objectives.names()[-2:] == ["other", "mine"]


BROKEN = {
    "syntax.py": ("def broken(:\n", "SyntaxError: "),
    "missing_dep.py": ("import not_a_real_module_xyz\n",
                       "ModuleNotFoundError: No module named 'not_a_real_module_xyz' (missing_dep.py, line 1)"),
    "name_error.py": ("import objectives\n\nx = undefined_name\n",
                      "NameError: name 'undefined_name' is not defined (name_error.py, line 3)"),
    "nothing.py": ("X = 1\n", "it registers no objective; decorate an Objective subclass with @objectives.register"),
    "taken.py": (plugin_source("gan"), "ValueError: objective name 'gan' is already taken by objectives.gan.GAN"),
    "toy_only.py": (plugin_source("toy-only").replace(', "image": {"lr": 1e-3}', ""),
                    "defaults needs a dict of hyperparameters for each data kind; missing image"),
    "half.py": (plugin_source("half") + "raise RuntimeError('late failure')\n", "RuntimeError: late failure"),
}


@pytest.mark.parametrize("spec", [*BROKEN, "absent.py", "no_such_pkg_xyz.module"])
def test_broken_plugin_exits_2_with_one_line(tmp_path, capsys, spec):
    if spec in BROKEN:
        source, message = BROKEN[spec]
        spec = str(write(tmp_path / spec, source))
    else:
        message = "does not exist" if spec.endswith(".py") else "No module named 'no_such_pkg_xyz'"
    before = objectives.names()
    with pytest.raises(SystemExit) as exc:
        stability(["--model", "gan", "--plugin", spec, "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot load plugin" in lines[0] and message in lines[0], lines
    assert objectives.names() == before  # nothing half-registered
    assert not (tmp_path / "x").exists()


def test_installed_entry_points_reach_a_fresh_process(tmp_path):
    """A package "installed" on PYTHONPATH (a .dist-info with entry points) shows up in a new
    process's --model choices; a broken entry point is skipped with a warning instead of
    breaking the built-ins."""
    site = tmp_path / "site"
    write(site / "extobj" / "__init__.py", plugin_source("ep-module"))
    write(site / "extobj" / "classes.py", plugin_source("ep-class", decorated=False))
    write(site / "extobj-0.1.dist-info" / "METADATA", "Metadata-Version: 2.1\nName: extobj\nVersion: 0.1\n")
    write(site / "extobj-0.1.dist-info" / "entry_points.txt",
          "[gramharness.objectives]\nmoments = extobj\nclassy = extobj.classes:Moments\nbroken = extobj.missing\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "sweeps.stability", "--model", "nope", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    listed = last.split("choose from ", 1)[1].removesuffix(" (see --help)").removesuffix(" or all").split(", ")
    # built-ins first (other tests may have registered plugins in this process: not those)
    builtins = [n for n, cls in objectives.registry.REGISTRY.items() if cls.__module__.startswith("objectives.")]
    assert listed == [*builtins, "ep-module", "ep-class"], last
    assert "skipping objective entry point broken = extobj.missing: ModuleNotFoundError" in res.stderr


def test_figure_workers_load_the_parents_plugins(tmp_path):
    """A report's figures are drawn in worker processes where the machine has several cores
    (`analysis.figures.draw_all`); each first loads the plugins the parent loaded, so what
    they register (objectives, data sets, metrics) is there too."""
    from analysis.figures import draw_all
    objectives.load_plugin(str(write(tmp_path / "figure_moments.py", plugin_source("figure-moments"))))
    assert all("figure-moments" in names for names in draw_all([objectives.registry.names] * 2))
