"""`hpcgan report`: pages of a real run (stopped by SIGUSR2, requeued, diverged once, evaluated) and
of a real local sweep, opened in headless Chromium (no console error, every image decodes, the FID
column sorts), TensorBoard scalars, and one-line errors."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpcgan.cli.main import main
from hpcgan.cli.report.images import pick
from tests.conftest import REPO, assert_one_line_error, run_cli

TINY32 = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = REPO / "tests" / "artifacts"  # screenshots (git-ignored)


def _wait_for(condition, timeout: float, what: str, details=lambda: "", poll: float = 0.2) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{details()}")
        time.sleep(poll)


def _completed(run_dir: Path) -> bool:
    lines = (run_dir / "events.jsonl").read_text().splitlines() if (run_dir / "events.jsonl").exists() else []
    return bool(lines) and json.loads(lines[-1])["event"] == "completed"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(a run with every kind of event and an eval.jsonl, a 2-run sweep plus a run not started)."""
    root = tmp_path_factory.mktemp("report")
    shards = root / "ph32"
    run_cli("phantom", shards, "--n", "144", "--size", "32", "--shard-size", "64", "--val-fraction", "0.1")
    # The sweep is submitted and trains in submitit's local processes while the single run trains here.
    sweep_file = root / "pair.toml"
    sweep_file.write_text('[base]\n"train.steps" = 30\n"checkpoint.every" = 15\n"eval.every" = 15\n"eval.n" = 64\n'
                          '"train.sample_every" = 15\n[grid]\n"optim.lr_g" = [0.0002, 0.001]\n')  # fmt: skip
    sweep = root / "sweep"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    submit_args = ["submit", "--cluster", "local", "--gan", "dcgan64", "--data", str(shards), "--sweep",
                   str(sweep_file), "--run-dir", str(sweep), "--time", "5", *TINY32]  # fmt: skip
    submit_log = root / "submit.log"  # a file, not a pipe: the jobs it starts may inherit the descriptor
    with submit_log.open("w") as log:
        submit = subprocess.Popen([sys.executable, "-m", "hpcgan", *submit_args], cwd=REPO, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)  # fmt: skip

    run_dir = root / "run"
    args = ["--gan", "dcgan64", "--data", str(shards), "--run-dir", str(run_dir), *TINY32, "checkpoint.every=10",
            "eval.every=20", "eval.n=64", "train.sample_every=5", "train.log_every=2",
            "guard.inject_nan_at=27"]  # fmt: skip
    # train.steps is not part of the config hash: the first job can't finish before the signal.
    first = subprocess.Popen([sys.executable, "-m", "hpcgan.train", *args, "train.steps=100000"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        metrics = run_dir / "metrics.jsonl"
        _wait_for(lambda: metrics.exists() and metrics.stat().st_size > 0, 120, "the first logged step", poll=0.05)
        first.send_signal(signal.SIGUSR2)  # as SLURM does before a time limit or a preemption
        assert first.wait(timeout=120) == 3  # checkpointed, exit for requeue
    finally:
        first.kill()
    # The requeued job: SLURM counts the restart; the guard rolls back a NaN at step 27.
    run_cli("train", *args, "train.steps=40", threads=1, env={"SLURM_RESTART_COUNT": "1"})
    run_cli("eval", run_dir, "--n", "64", "--checkpoints", "all", threads=1)

    submit.wait(timeout=240)
    output = submit_log.read_text()
    assert submit.returncode == 0 and output.count("submitted job") == 2, output
    members = [sweep / "000-lr_g=0.0002", sweep / "001-lr_g=0.001"]
    logs = lambda: "\n".join(f"{p.name}: {p.read_text()[-1500:]}" for p in sorted((sweep / "slurm").glob("*_log.*")))

    def sweep_done() -> bool:
        if all(_completed(m) for m in members):
            return True
        over = len(list((sweep / "slurm").glob("*_result.pkl"))) == len(members)
        if over and not all(_completed(m) for m in members):  # both jobs ended, a run did not complete
            raise AssertionError(f"a sweep job ended without completing its run\n{logs()}")
        return False

    _wait_for(sweep_done, 240, "the sweep's two runs", logs)
    waiting = sweep / "002-waiting"  # submitted, never started: a job.json and nothing else
    waiting.mkdir()
    shutil.copy(members[0] / "job.json", waiting / "job.json")
    return run_dir, sweep


@pytest.fixture(scope="module")
def pages(runs):
    run_dir, sweep = runs
    run_page = Path(run_cli("report", run_dir).stdout.strip())
    sweep_page = Path(run_cli("report", sweep).stdout.strip())
    return run_page, sweep_page


def test_the_run_page_shows_samples_curves_events_fids_environment_and_config(runs, pages):
    run_dir, _ = runs
    run_page, _ = pages
    assert run_page == run_dir / "report" / "index.html"
    html = run_page.read_text()
    for name in ("losses", "accuracy", "fid", "speed"):
        assert (run_page.parent / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert f'src="figures/{name}.png"' in html
    grids = sorted(p.name for p in (run_dir / "samples").glob("step-*.png"))
    assert len(grids) == 8 and sorted(p.name for p in (run_page.parent / "samples").glob("step-*.png")) == grids
    assert 'href="../samples/step-000040.png"' in html  # a thumbnail opens the full grid
    for text in ("stopped by SIGUSR2", "requeued (restart 1)", "diverged at step 27", "rolled back to step 20",
                 "completed", "hpcgan eval (random-not-comparable-seed0, n=64)", "during training (random",
                 "recorded by the run at its last start", os.uname().nodename, "inject_nan_at",
                 "2 starts, 1 stop"):  # fmt: skip
        assert text in html, text
    assert "No metrics yet" not in html


def test_the_timeline_keeps_first_and_last_grid_when_it_thins_them_out():
    samples = [(s, Path(f"step-{s:06d}.png")) for s in range(10, 410, 10)]
    assert [s for s, _ in pick(samples, 5)] == [10, 110, 210, 300, 400]
    assert pick(samples[:3], 16) == samples[:3] and pick(samples, 1) == [samples[-1]]


def test_the_sweep_page_links_every_run_page_and_overlays_their_curves(runs, pages):
    _, sweep = runs
    _, sweep_page = pages
    assert sweep_page == sweep / "report" / "index.html"
    html = sweep_page.read_text()
    for name in ("000-lr_g=0.0002", "001-lr_g=0.001", "002-waiting"):
        assert (sweep / name / "report" / "index.html").is_file()
        assert f'href="../{name.replace("=", "%3D")}/report/index.html"' in html
    assert (sweep_page.parent / "figures" / "losses.png").is_file() and (sweep_page.parent / "figures" / "fid.png")
    assert "optim.lr_g" in html  # the varied key has its own column
    waiting = (sweep / "002-waiting" / "report" / "index.html").read_text()
    assert "No metrics yet" in waiting and "pending" in waiting


def test_a_run_without_metrics_gets_a_page_that_says_so(runs, tmp_path, capsys):
    run_dir, _ = runs
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(run_dir / "config.json", fresh / "config.json")
    assert main(["report", str(fresh)]) == 0
    html = Path(capsys.readouterr().out.strip()).read_text()
    assert "No metrics yet" in html and "No sample grids yet" in html and "inject_nan_at" in html


def _playwright():
    """Playwright on Debian's Chromium; skipped without them, unless HPCGAN_REQUIRE_BROWSER=1 (CI)."""
    required = os.environ.get("HPCGAN_REQUIRE_BROWSER") == "1"
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"{CHROMIUM} is missing and HPCGAN_REQUIRE_BROWSER=1: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    if required:
        from playwright.sync_api import sync_playwright
    else:
        sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    return sync_playwright()


def _open(browser, path: Path):
    """The page at `path` (file://, as a researcher opens it), its console errors and broken images."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    broken = page.evaluate("[...document.images].filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.src)")
    count = page.evaluate("document.images.length")
    return page, errors, broken, count


def test_the_pages_load_in_chromium_with_every_image_and_the_fid_column_sorts(runs, pages):
    run_dir, sweep = runs
    run_page, sweep_page = pages
    ARTIFACTS.mkdir(exist_ok=True)
    with _playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for path, shot, min_images in ((run_page, "report-run.png", 13), (sweep_page, "report-sweep.png", 4),
                                           (sweep / "002-waiting" / "report" / "index.html", None, 0)):  # fmt: skip
                page, errors, broken, count = _open(browser, path)
                assert not errors and not broken and count >= min_images, (path, errors, broken, count)
                if shot:
                    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
                    print(f"screenshot: {ARTIFACTS / shot}")

            page, *_ = _open(browser, sweep_page)
            rows = lambda: page.eval_on_selector_all("table.runs tbody tr", "(rs) => rs.map((r) => r.dataset.run)")
            fids = {r["name"]: r["fid"] for r in page.eval_on_selector_all(
                "table.runs tbody tr", "(rs) => rs.map((r) => ({name: r.dataset.run, "
                "fid: r.cells[r.closest('table').querySelector('#fid').cellIndex].dataset.value}))")}  # fmt: skip
            assert fids["002-waiting"] is None and all(fids[n] for n in fids if n != "002-waiting")
            measured = sorted((n for n in fids if fids[n]), key=lambda n: float(fids[n]))
            assert rows() == sorted(fids)  # by name at first
            page.click("th:text-is('run')")
            page.click("th:text-is('run')")
            by_name = rows()
            assert by_name == sorted(fids, reverse=True)  # the run without a FID first
            page.click("th#fid")
            ascending = rows()
            assert ascending == [*measured, "002-waiting"] != by_name  # the order changed; no FID: last
            assert page.get_attribute("th#fid", "aria-sort") == "ascending"
            page.click("th#fid")
            assert rows() == [*reversed(measured), "002-waiting"] != ascending
        finally:
            browser.close()


def test_tensorboard_scalars_are_written_once_per_report(runs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = runs
    out = tmp_path / "elsewhere"
    for _ in range(2):  # a second report replaces the scalars, it doesn't add to them
        proc = run_cli("report", run_dir, "--out", out, "--tensorboard", threads=1)
    assert "tensorboard --logdir" in proc.stderr and (out / "index.html").is_file()
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("train/loss_d", "train/loss_g", "train/d_real_acc", "train/d_fake_acc", "train/images_per_s",
                "fid/eval-random-not-comparable-seed0-n64", "events/stopped", "events/diverged"):  # fmt: skip
        assert tag in tags, (tag, tags)
    logged = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [e.step for e in events.Scalars("train/loss_d")]
    assert steps == sorted(set(steps)) and set(steps) <= set(logged) and steps[-1] == 40
    assert len(list((out / "tensorboard").iterdir())) == 1


def _in_process(capsys, *args) -> subprocess.CompletedProcess:
    """`hpcgan ARGS` through the CLI's entry point in this process (no second of imports per case)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def test_without_tensorboard_installed_the_option_is_one_line(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    assert_one_line_error(_in_process(capsys, "report", run_dir, "--tensorboard"), "pip install 'hpcgan[tensorboard]'")
    assert not (run_dir / "report").exists()  # refused before anything was written


def test_bad_input_is_one_line(runs, tmp_path, capsys):
    run_dir, sweep = runs
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert_one_line_error(run_cli("report", tmp_path / "missing", check=False), "no such directory")  # for real once
    cases = [
        ([tmp_path / "empty"], "not a run or a sweep"),
        ([tmp_path / "file.txt"], "not a directory"),
        ([run_dir, "--out", "/proc/1/hpcgan-report"], "/proc/1/hpcgan-report", "cannot write"),
        ([run_dir, "--out", tmp_path / "file.txt"], "not a folder"),
        ([run_dir, "--out", sweep / "001-lr_g=0.001"], "that is a run dir"),
        ([run_dir, "--grids", "0"], "--grids 0"),
    ]
    paper = tmp_path / "paper"
    (paper / "figures").mkdir(parents=True)
    (paper / "figures" / "losses.png").write_bytes(b"the user's own figure")
    cases.append(([run_dir, "--out", paper], "not an hpcgan report folder"))
    for args, *words in cases:
        assert_one_line_error(_in_process(capsys, "report", *args), *words)
    assert (paper / "figures" / "losses.png").read_bytes() == b"the user's own figure"  # nothing pruned
