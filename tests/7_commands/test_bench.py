"""The speed benchmark: a tiny invocation writes its table, and the speed-up column is
the per-core ratio against the yardstick timed in the same run."""

import json

import pandas as pd
import pytest

from sweeps import bench


def test_bench_writes_table_and_ratio_against_yardstick(tmp_path, capsys):
    # A stand-in yardstick that reports a fixed 10 ms per generator step.
    naive = tmp_path / "naive.py"
    naive.write_text("print('model=x ms_per_step=10.000 hq=1 modes=8')\n")
    out = tmp_path / "bench"
    code = bench.main(["--models", "gan,mmdnet", "--stack", "1,2", "--timed-steps", "3", "--warmup", "1",
                       "--repeats", "1", "--naive", str(naive), "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "bench.csv")
    assert list(zip(table["model"], table["stack"])) == [("gan", 1), ("gan", 2), ("mmdnet", 1), ("mmdnet", 2)]
    assert (table["naive_ms_per_step"] == 10.0).all()
    # stack R at t seconds per stacked step = R / t run-steps per second; vs 0.010 s per naive step
    expected = table["stack"] / (table["ms_per_step"] / 1e3) * 0.010
    pd.testing.assert_series_equal(table["speedup_vs_naive"], expected, check_names=False, rtol=1e-6)
    assert "| gan" in capsys.readouterr().out
    assert json.loads((out / "bench.json").read_text())["provenance"]["versions"]["torch"]


def test_a_yardstick_without_the_objective_leaves_its_ratio_empty(tmp_path):
    """A yardstick that rejects an objective (argparse's exit code 2) times nothing for it."""
    naive = tmp_path / "naive.py"
    naive.write_text("import sys\nif 'wgangp' in sys.argv: sys.exit(2)\nprint('ms_per_step=10.000')\n")
    assert bench.main(["--models", "gan,wgangp", "--stack", "1", "--timed-steps", "2", "--warmup", "1",
                       "--repeats", "1", "--naive", str(naive), "--out", str(tmp_path / "b")]) == 0
    table = pd.read_csv(tmp_path / "b" / "bench.csv").set_index("model")
    assert table.loc["gan", "naive_ms_per_step"] == 10.0 and pd.isna(table.loc["wgangp", "naive_ms_per_step"])


@pytest.mark.parametrize("args, message", [
    (["--models", "vae"], "unknown model vae"),
    (["--stack", "0"], "--stack values must be at least 1"),
    (["--naive", "/nonexistent/naive.py"], "naive yardstick"),
])
def test_bench_bad_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    with pytest.raises(SystemExit) as exc:
        bench.main([*args, "--out", str(tmp_path)])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_rounds_interleave_the_yardstick_with_our_stacks_and_exclude_warm_up(tmp_path, monkeypatch):
    """Each round runs the yardstick (a short and a long run, whose difference drops its
    start-up and warm-up) and then every stack of ours; the yardstick's reported cost is its
    per-step cost alone, and both clocks come with their spread over rounds."""
    log = tmp_path / "log.txt"
    naive = tmp_path / "naive.py"
    # 1 s of start-up and warm-up in its loop timer, then 10 ms per step
    naive.write_text("import sys\nsteps = int(sys.argv[sys.argv.index('--steps') + 1])\n"
                     f"open({str(log)!r}, 'a').write(f'naive {{steps}}\\n')\n"
                     "print(f'ms_per_step={(1000 + 10 * steps) / steps:.6f}')\n")
    timed = bench.time_ours

    def logged(trainer, steps, timings):
        with open(log, "a") as f:
            f.write(f"ours {trainer.runs}\n")
        timed(trainer, steps, timings)
    monkeypatch.setattr(bench, "time_ours", logged)
    out = tmp_path / "bench"
    assert bench.main(["--models", "gan", "--stack", "1,2", "--timed-steps", "3", "--warmup", "2", "--repeats", "2",
                       "--naive", str(naive), "--out", str(out)]) == 0
    # at least 10 steps are timed per round: w = 2 and w + 10
    assert log.read_text().split("\n")[:-1] == ["naive 2", "naive 12", "ours 1", "ours 2"] * 2
    table = pd.read_csv(out / "bench.csv")
    assert table["naive_ms_per_step"].to_list() == pytest.approx([10.0, 10.0])
    for clock in ("ms_per_step", "cpu_ms_per_step"):
        assert (table[f"{clock}_min"] <= table[clock]).all() and (table[clock] <= table[f"{clock}_max"]).all()
        assert (table[clock] > 0).all()
    assert "cpu_speedup_vs_naive" in table


def test_the_yardstick_runs_with_our_mkl_kernel_choice(tmp_path):
    """The yardstick's process imports `core.blas` and `core.allocator` before the script (as ours do), and
    still runs as its own script would: as __main__, with its arguments and its folder on the path."""
    log = tmp_path / "yardstick.log"
    naive = tmp_path / "naive.py"
    seen = "[{'core.blas', 'core.allocator'} <= set(sys.modules), __name__, sys.argv[1:3], sys.path[0]]"
    naive.write_text(f"import sys\nopen({str(log)!r}, 'w').write(repr({seen}))\nprint('ms_per_step=10.000')\n")
    assert bench.main(["--models", "gan", "--stack", "1", "--timed-steps", "2", "--warmup", "1", "--repeats", "1",
                       "--naive", str(naive), "--out", str(tmp_path / "b")]) == 0
    assert log.read_text() == repr([True, "__main__", ["--model", "gan"], str(tmp_path)])
