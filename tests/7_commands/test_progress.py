"""A sweep's progress counts generator steps across running stacks, weighted by each stack's
work per step: on a terminal a bar, elsewhere plain lines; the steps move before any stack
finishes its cells."""
from __future__ import annotations

import io
import re
import time

from sweeps.parallel import Placement, StepProgress, clock, run_with_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_clock_reads_minutes_and_hours():
    assert clock(250) == "4:10"
    assert clock(3723) == "1:02:03"


def test_plain_lines_without_a_terminal_every_fraction_of_the_steps():
    out = io.StringIO()
    progress = StepProgress([1000, 1000], cells=4, unit="cell", stream=out)
    progress.advance(0, 50)  # 2.5% of the steps: not yet a line
    assert out.getvalue() == ""
    progress.advance(1, 60)  # 5.5%
    progress.finish(0, 2)
    progress.finish(1, 2)
    progress.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert re.fullmatch(r"progress: 110/2,000 steps \(5\.5% of the work\), 0/4 cells, elapsed 0:0\d, eta \d+:\d\d",
                        lines[0])
    assert lines[1].startswith("progress: 1,060/2,000 steps (53.0% of the work), 2/4 cells")
    assert lines[-1].startswith("progress: 2,000/2,000 steps (100.0% of the work), 4/4 cells")


def test_steps_never_run_backwards_or_past_a_stack():
    progress = StepProgress([100], cells=1, unit="cell", stream=io.StringIO())
    progress.advance(0, 80)
    progress.advance(0, 40)  # a late report
    assert progress.done == [80]
    progress.advance(0, 500)
    assert progress.done == [100]


def test_a_bar_on_a_terminal_shows_the_share_of_the_work_with_steps_and_cells_beside_it():
    out = Terminal()
    progress = StepProgress([300, 100], cells=3, unit="cell", stream=out)
    progress.advance(0, 120)
    progress.finish(1, 1)
    assert abs(progress.bar.n - 55) < 1e-9  # (120 + 100) of 400 equal-weight steps
    progress.bar.refresh()
    assert "220/400 steps, 1/3 cells" in out.getvalue() and "\r" in out.getvalue()
    progress.close()


def test_the_share_and_eta_weigh_steps_by_their_stacks_work():
    """A costly stack (weight 9) trained first: after it, 90% of the work is done, not 50%
    of the steps, and the time left is a ninth of the time spent."""
    progress = StepProgress([100, 100], cells=2, unit="cell", stream=io.StringIO(), weights=[9.0, 1.0])
    progress.started -= 90.0
    progress.finish(0, 1)
    assert abs(progress.share() - 0.9) < 1e-12
    assert re.fullmatch(r"progress: 100/200 steps \(90\.0% of the work\), 1/2 cells, elapsed 1:3\d, eta 0:1\d",
                        progress.line()), progress.line()


def stack(task: dict, device: str, progress=None) -> list[dict]:
    """A stand-in for `sweeps.worker.run_task`: reports half its steps, works, then ends."""
    progress(task["steps"] // 2)
    time.sleep(2.5)
    progress(task["steps"])
    return [{"path": task["path"], "status": "ok", "reason": None, "metrics": {}, "wall": 1.0, "rss": None}]


def test_workers_report_steps_before_their_stacks_finish(tmp_path):
    tasks = [{"path": str(tmp_path / f"cell{i}"), "steps": 100} for i in range(2)]
    out = io.StringIO()
    rows = run_with_progress(stack, tasks, Placement(jobs=2), 2, "cell", tmp_path, lambda *a: [],
                             steps=lambda t: t["steps"], stream=out)
    assert sorted(r["path"] for r in rows) == sorted(t["path"] for t in tasks)
    text = out.getvalue()
    assert re.search(r"progress: (50|100|150)/200 steps .*, 0/2 cells", text), text
    assert text.splitlines()[-1].startswith("progress: 200/200 steps (100.0% of the work), 2/2 cells")
    assert "cell0: ok [1 s]" in text


def test_in_process_tasks_report_straight_to_the_bar(tmp_path):
    out = io.StringIO()
    run_with_progress(stack, [{"path": str(tmp_path / "c"), "steps": 40}], Placement(jobs=1), 1, "cell", tmp_path,
                      lambda *a: [], steps=lambda t: t["steps"], stream=out)
    assert out.getvalue().splitlines()[0].startswith("progress: 20/40 steps (50.0% of the work), 0/1 cells")


def test_more_jobs_than_cores_is_said_in_one_line(capsys):
    import argparse
    import os

    from sweeps.parallel import placement_from_args
    cores = len(os.sched_getaffinity(0))
    args = argparse.Namespace(backend="loky", scheduler=None, devices=["cpu"], jobs=cores + 1, jobs_per_device=1,
                              threads=1)
    assert placement_from_args(args).jobs == cores + 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--jobs {cores + 1} is more than this machine's {cores} cores" in err
    placement_from_args(argparse.Namespace(**{**vars(args), "jobs": cores}))
    assert capsys.readouterr().err == ""


def test_a_second_sweep_into_the_same_output_exits_2_naming_the_first(tmp_path):
    import os
    import subprocess
    import sys

    from sweeps.lock import output_lock
    with output_lock(tmp_path):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
        second = subprocess.run([sys.executable, "-m", "sweeps.stability", "--preset", "smoke", "--model", "gan",
                                 "--out", str(tmp_path), "--no-figures"], capture_output=True, text=True)
    assert second.returncode == 2, second.stderr
    line, = second.stderr.strip().splitlines()
    assert line.endswith(f"stability: error: another sweep (pid {os.getpid()}) is writing into {tmp_path}; "
                         "wait for it to end or give another --out")
    assert not (tmp_path / "stability").exists()
    with output_lock(tmp_path):  # released when the first ended
        pass
