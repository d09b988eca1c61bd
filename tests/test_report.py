"""`hpcgan report`: pages of a real run (stopped by SIGUSR2, requeued, diverged once, evaluated) and
of a real local sweep, opened in headless Chromium (no console error, every image decodes, the FID
column sorts), TensorBoard scalars, and one-line errors."""

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from html import unescape
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from hpcgan.cli.main import main
from hpcgan.data.index import content_hash
from hpcgan.report.build import build_run_report
from hpcgan.report.images import pick
from tests.conftest import REPO, assert_one_line_error, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

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


# -- runs made from files (no training): the page's captions, checks and missing inputs ----------


def _shard_set(root: Path, classes=("normal", "opacity"), n: int = 80, size: int = 32) -> Path:
    """A small shard set as `hpcgan shard` writes it (KEY.cls, KEY.json, KEY.png per image, an index)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = [i % len(classes) for i in range(n)]
    with tarfile.open(root / "train-000000.tar", "w") as tar:
        for i, label in enumerate(labels):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(buf, "PNG")
            meta = json.dumps({"class_name": classes[label], "label": label}).encode()
            for ext, data in (("cls", str(label).encode()), ("json", meta), ("png", buf.getvalue())):
                member = tarfile.TarInfo(f"train-{i:07d}.{ext}")
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
    shard = root / "train-000000.tar"
    histogram = {c: labels.count(i) for i, c in enumerate(classes)}
    splits = {"train": {"count": n, "bytes": shard.stat().st_size, "histogram": histogram,
                        "shards": [{"name": shard.name, "count": n, "bytes": shard.stat().st_size,
                                    "sha256": hashlib.sha256(shard.read_bytes()).hexdigest()}]}}  # fmt: skip
    index = {"format_version": 1, "settings": {"size": size, "source": "made by the test"}, "classes": list(classes),
             "image_size": size, "extension": "png", "splits": splits, "skipped": 0,
             "content_hash": content_hash(splits)}  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    return root


def _files_run(path: Path, data: Path | str, *, conditional: str = "none", ema: float = 0.999,
               acc: tuple[float, float] = (0.7, 0.6), fid: bool = False, steps: int = 200) -> Path:  # fmt: skip
    """A run dir as the trainer leaves it: config.json, metrics.jsonl, events.jsonl, two sample grids, a checkpoint."""
    path.mkdir(parents=True)
    config = {"gan": "dcgan64", "data": str(data), "seed": 0, "model": {"resolution": 32, "conditional": conditional},
              "train": {"steps": steps, "ema": ema, "ema_kimg": 0.0}}  # fmt: skip
    (path / "config.json").write_text(json.dumps(config))
    rows = [{"step": s, "loss_d": 1.0, "loss_g": 2.0, "d_real_acc": 0.6, "d_fake_acc": 0.5, "images_per_s": 90.0}
            for s in range(10, steps - 90, 10)]  # fmt: skip
    rows += [{"step": s, "loss_d": 0.1, "loss_g": 5.0, "d_real_acc": acc[0], "d_fake_acc": acc[1],
              "images_per_s": 90.0} for s in range(steps - 90, steps + 10, 10)]  # fmt: skip
    if fid:
        rows.append({"step": steps, "fid": 42.0, "kid": 0.01, "extractor": "random-not-comparable-seed0", "n_fake": 64})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = time.time()
    events = [{"event": "start", "step": 0, "time": t - 60, "host": "node1", "world_size": 1, "restart_count": 0},
              {"event": "completed", "step": steps, "time": t}]  # fmt: skip
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (path / "samples").mkdir()
    rng = np.random.default_rng(1)
    for step in (steps // 2, steps):  # 8 x 8 images of 32 px, each with a 1 px border, as the trainer saves them
        grid = rng.integers(0, 255, (8 * 34, 8 * 34), dtype=np.uint8)
        Image.fromarray(grid).save(path / "samples" / f"step-{step:06d}.png")
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / f"step-{steps:06d}.pt").write_bytes(b"not a real checkpoint")
    (path / "checkpoints" / f"step-{steps:06d}.json").write_text("{}")
    return path


def _page(run_dir: Path) -> str:
    return build_run_report(run_dir).page.read_text()


def _caption(html: str, title: str) -> str:
    """The text of the caption under the large grid titled `title`."""
    match = re.search(rf"<h3>{re.escape(title)}.*?</h3>.*?<p class=\"note\">(.*?)</p>", html, re.S)
    assert match, title
    return unescape(re.sub(r"<[^>]+>", "", match.group(1)))


def test_the_sample_caption_says_which_network_drew_the_grids_and_where_classes_are(tmp_path):
    two = _shard_set(tmp_path / "two")
    three = _shard_set(tmp_path / "three", classes=("normal", "bacterial", "viral"), n=90)
    plain = _caption(_page(_files_run(tmp_path / "plain", two)), "Latest samples")
    assert "EMA generator" in plain and "G itself" not in plain and "without EMA" not in plain
    assert "class" not in plain.lower()  # an unconditional run has no classes to speak of
    no_ema = _caption(_page(_files_run(tmp_path / "cgan", two, conditional="projection", ema=0.0)), "Latest samples")
    assert "G itself" in no_ema and "train.ema=0" in no_ema and "EMA generator (" not in no_ema
    assert "Classes in fixed columns: normal in columns 1, 3, 5 and 7; opacity in columns 2, 4, 6 and 8" in no_ema
    cycling = _caption(_page(_files_run(tmp_path / "three-classes", three, conditional="aux")), "Latest samples")
    assert ("Classes in fixed columns: normal in columns 1, 4 and 7; bacterial in columns 2, 5 and 8; "
            "viral in columns 3 and 6") in cycling


def test_the_run_page_sets_real_images_beside_the_samples_and_summarises_the_data(tmp_path):
    run_dir = _files_run(tmp_path / "run", _shard_set(tmp_path / "shards"), conditional="projection")
    html = _page(run_dir)
    real = _caption(html, "Real training images")
    assert "64 images of the train split" in real and "placed like the samples" in real
    grid = Image.open(run_dir / "report" / "samples" / "real.png")
    assert grid.size == (8 * 34, 8 * 34)  # the sample grid's layout, not scaled up
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    for fact in ("80 (train 80 in 1 shard)", "normal 40 50%", "opacity 40 50%", "made by the test"):
        assert fact in " ".join(text.split()), fact
    for target in ("config.json", "metrics.jsonl", "events.jsonl", "checkpoints/step-000200.pt"):
        assert f'href="../{target}"' in html, target
    _assert_links_resolve(run_dir / "report" / "index.html")


def _assert_links_resolve(page: Path) -> None:
    """Every src and href of the page is a relative path to a file that exists: one offline folder."""
    html = page.read_text()
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links
    for link in links:
        if link == "data:,":  # the empty favicon
            continue
        assert "://" not in link and not link.startswith("/"), link
        assert (page.parent / unquote(unescape(link))).is_file(), link


def test_the_page_says_d_is_winning_when_it_sits_at_full_accuracy(tmp_path):
    shards = _shard_set(tmp_path / "shards")
    won = _page(_files_run(tmp_path / "won", shards, acc=(1.0, 1.0)))
    assert "D is winning." in won and "G gets no useful gradient" in won and "optim.lr_d" in won
    assert "D is winning" not in _page(_files_run(tmp_path / "fair", shards, acc=(0.8, 1.0)))
    assert "D is winning" not in _page(_files_run(tmp_path / "close", shards, acc=(0.97, 1.0)))


def test_missing_or_damaged_inputs_are_one_line_on_the_page(tmp_path):
    shards = _shard_set(tmp_path / "shards")
    moved = _page(_files_run(tmp_path / "moved", tmp_path / "gone"))
    # Said where the real images would be, and in the data section.
    assert set(_missing(moved)) == {f"{tmp_path / 'gone'}: the shard set is not there (moved or deleted since the run "
                                    "started)."}  # fmt: skip

    broken_index = shutil.copytree(shards, tmp_path / "broken-index")
    (broken_index / "index.json").write_text("{ not json")
    [line] = set(_missing(_page(_files_run(tmp_path / "bad-index", broken_index))))
    assert "not a valid shard index" in line

    cut = shutil.copytree(shards, tmp_path / "cut")
    (cut / "train-000000.tar").write_bytes(b"\0" * 100)  # neither a tar nor an image
    [line] = set(_missing(_page(_files_run(tmp_path / "cut-run", cut))))
    assert "train-000000.tar: unreadable shard" in line or "no readable image" in line, line

    damaged = shutil.copytree(shards, tmp_path / "damaged")
    _damage_first_image(damaged / "train-000000.tar")
    html = _page(_files_run(tmp_path / "damaged-run", damaged))
    assert "1 damaged image skipped" in _caption(html, "Real training images") and not _missing(html)

    run_dir = _files_run(tmp_path / "bad-grid", shards)
    (run_dir / "samples" / "step-000100.png").write_bytes(b"\x89PNG not really")
    assert _missing(_page(run_dir)) == ["step-000100.png: unreadable, left out"]

    (run_dir / "config.json").unlink()
    html = _page(run_dir)
    assert set(_missing(html)) == {"No config.json: the shard set this run trains on is not known yet.",
                                   "step-000100.png: unreadable, left out"}


def _missing(html: str) -> list[str]:
    """The one-line messages of missing inputs on a page (each one line: no break inside)."""
    lines = [unescape(m) for m in re.findall(r'<p class="missing">(.*?)</p>', html, re.S)]
    assert all("\n" not in line and "<" not in line for line in lines), lines
    return [line for line in lines if not line.startswith("No checkpoints yet")]


def _damage_first_image(shard: Path) -> None:
    """Overwrite the first PNG's bytes inside the tar with zeros, keeping the tar itself intact."""
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".png"))
    with shard.open("r+b") as handle:
        handle.seek(member.offset_data)
        handle.write(b"\0" * member.size)


def test_values_from_the_run_are_escaped_and_the_page_is_one_offline_file(tmp_path):
    run_dir = _files_run(tmp_path / 'a<b>&"c', _shard_set(tmp_path / "shards"))
    config = json.loads((run_dir / "config.json").read_text())
    config["gan"] = "<img src=x onerror=alert(1)>"
    (run_dir / "config.json").write_text(json.dumps(config))
    html = _page(run_dir)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>&" not in html and "a&lt;b&gt;&amp;&#34;c" in html
    assert "<style>" in html and "--accent" in html  # the stylesheet inlined, not linked
    assert "<link rel=\"stylesheet\"" not in html and "http://" not in html and "https://" not in html
    _assert_links_resolve(run_dir / "report" / "index.html")


def test_the_templates_and_static_files_are_package_data():
    with (REPO / "pyproject.toml").open("rb") as handle:
        declared = tomllib.load(handle)["tool"]["setuptools"]["package-data"]["hpcgan.report"]
    package = REPO / "hpcgan" / "report"
    files = [p.relative_to(package) for folder in ("templates", "static") for p in (package / folder).iterdir()]
    assert files and all(any(f.match(glob) for glob in declared) for f in files), (files, declared)
    assert "jinja2>=3.1" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]


def test_a_report_does_not_import_torch(tmp_path):
    run_dir = _files_run(tmp_path / "run", _shard_set(tmp_path / "shards"), conditional="projection", fid=True)
    code = (
        "import sys\nfrom pathlib import Path\nfrom hpcgan.report.build import make_report\n"
        f"page = make_report(Path({str(run_dir)!r})).page\n"
        "assert page.is_file() and 'Real training images' in page.read_text()\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_no_fid_box_reads_as_one_sentence_in_chromium(tmp_path):
    run_dir = _files_run(tmp_path / "run", _shard_set(tmp_path / "shards"))
    page_path = build_run_report(run_dir).page
    assert "No FID yet." in page_path.read_text()
    with _playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, errors, broken, _ = _open(browser, page_path)
            assert not errors and not broken, (errors, broken)
            # In a flex box every child is a column of its own (and is blockified): the sentence must be one
            # child, its bold and code words inline within it.
            layout = page.evaluate("""() => {
                const box = document.querySelector('.placeholder');
                const items = [...box.childNodes].filter((n) => n.nodeType === 1 || n.textContent.trim());
                const words = [...box.querySelectorAll('b, code')].map((e) => getComputedStyle(e).display);
                return {items: items.length, words, text: box.innerText.replace(/\\s+/g, ' ').trim()};
            }""")  # fmt: skip
            assert layout["items"] == 1 and layout["words"] and set(layout["words"]) == {"inline"}, layout
            assert layout["text"] == f"No FID yet. Train with eval.every=N or run hpcgan eval {run_dir}.", layout
        finally:
            browser.close()


def test_the_trained_runs_page_captions_its_grids_truly_and_its_links_resolve(runs, pages):
    run_dir, _ = runs
    run_page, sweep_page = pages
    html = run_page.read_text()
    caption = _caption(html, "Latest samples")  # dcgan64: unconditional, with an EMA generator (train.ema=0.999)
    assert "EMA generator" in caption and "without EMA" not in caption and "class" not in caption.lower()
    assert "in shard order" in _caption(html, "Real training images")
    assert (run_page.parent / "samples" / "real.png").is_file()
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert "144 (train 130 in 3 shards, val 14 in 1 shard)" in text and "phantom" in text
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt"))
    assert checkpoints and all(f'href="../checkpoints/{c.name}"' in html for c in checkpoints)
    _assert_links_resolve(run_page)
    _assert_links_resolve(sweep_page)


def test_the_run_page_lists_fid_per_finding_beside_the_overall_fid_in_chromium(tmp_path):
    findings = ("effusion", "cardiomegaly", "No Finding")
    run_dir = _files_run(tmp_path / "run", _shard_set(tmp_path / "shards", classes=findings), conditional="projection",
                         fid=True)  # fmt: skip
    per = {"effusion": {"fid": 51.25, "n_real": 30, "n_fake": 16},
           "cardiomegaly": {"fid": 8.125, "n_real": 25, "n_fake": 16},
           "No Finding": {"fid": 47.5, "n_real": 25, "n_fake": 16}}  # fmt: skip
    older = {"step": 100, "fid": 60.0, "extractor": "random-not-comparable-seed0", "n_fake": 64,
             "fid_per_finding": {k: dict(v, fid=99.0) for k, v in per.items()}}  # fmt: skip
    newest = {"step": 200, "fid": 42.0, "kid": 0.01, "n_real": 80, "extractor": "random-not-comparable-seed0",
              "n_fake": 64, "fid_per_finding": per}  # fmt: skip
    with (run_dir / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps(older) + "\n" + json.dumps(newest) + "\n")
    page_path = build_run_report(run_dir).page
    with _playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page, errors, broken, _ = _open(browser, page_path)
            assert not errors and not broken, (errors, broken)
            section = page.locator("#fids")
            assert "FID per finding at step 200, during training" in section.inner_text()
            rows = page.eval_on_selector_all("#fids table.per-finding tr",
                                             "(rs) => rs.map((r) => [...r.cells].map((c) => c.innerText.trim()))")
            assert rows == [["finding", "FID", "real images", "generated images"],
                            ["all images", "42.00", "80", "64"],  # the overall FID of the same evaluation
                            ["effusion", "51.25", "30", "16"], ["cardiomegaly", "8.125", "25", "16"],
                            ["No Finding", "47.50", "25", "16"]]  # fmt: skip
            ARTIFACTS.mkdir(exist_ok=True)
            section.screenshot(path=str(ARTIFACTS / "report-fid-per-finding.png"))
        finally:
            browser.close()
    # A run whose evaluations have no per-finding FID has no such table.
    plain = _files_run(tmp_path / "plain", _shard_set(tmp_path / "plain-shards"), fid=True)
    assert "per-finding" not in _page(plain) and "FID and KID" in _page(plain)
