"""Hostile inputs (issue 13), as tables: each row is one case, so adding a case is one line.

Every case ends in one of: a one-line error (exit 2, no traceback), or a skip that is counted;
and whatever was committed before (shards, checkpoints, holds) is intact afterwards. Processes are
real: the CLI in a fresh interpreter, concurrent writers as concurrent processes.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, assert_one_line_error, file_digests, run_cli

TINY32 = ["model.resolution=32", "model.g_width=8", "model.d_width=8", "train.batch_size=16", "train.num_workers=0"]


@pytest.fixture(scope="module")
def ph32(tmp_path_factory) -> Path:
    """128 phantoms at 32 px in 2 shards of 64: a valid set, so a case fails for its own reason only."""
    out = tmp_path_factory.mktemp("hostile") / "ph32"
    run_cli("phantom", out, "--n", "128", "--size", "32", "--shard-size", "64", "--workers", "1")
    return out


# -- 1. the sbatch script: no injection, sizes and counts checked, paths inside their roots ----------

INJECTION = "s'\ntouch pwned #"  # the example: the newline ends the #SBATCH comment line

SUBMIT_CASES = [  # (case, extra args, fragments of the one error line)
    ("name-newline", ["--name", INJECTION], ["--name", "control character"]),
    ("name-cr", ["--name", "a\rb"], ["--name", "control character"]),
    ("name-nul-escape", ["--name", "a\x1bb"], ["--name", "control character"]),
    ("name-escapes", ["--name", "../../x"], ["--name", "plain name"]),
    ("name-dotdot", ["--name", ".."], ["--name", "plain name"]),
    ("name-absolute", ["--name", "/tmp/x"], ["--name", "plain name"]),
    ("account-newline", ["--account", "acct\nrm -rf ~"], ["--account", "control character"]),
    ("qos-newline", ["--qos", "normal\nid"], ["--qos", "control character"]),
    ("constraint-tab", ["--constraint", "a\tb"], ["--constraint", "control character"]),
    ("partition-newline", ["--partition", "gpu\nid"], ["--partition", "control character"]),
    ("run-dir-newline", ["--run-dir", "runs/a\nid #"], ["--run-dir", "control character"]),
    ("mem-words", ["--mem", "lots"], ["--mem lots", "SLURM size"]),
    ("mem-newline", ["--mem", "4G\nid"], ["--mem", "control character"]),
    ("mem-negative", ["--mem=-1G"], ["--mem -1G", "SLURM size"]),
    ("gpus-negative", ["--gpus-per-node", "-1"], ["--gpus-per-node -1", "0"]),
    ("cpus-negative", ["--cpus-per-task", "-2"], ["--cpus-per-task -2", "at least 1"]),
    ("cpus-zero", ["--cpus-per-task", "0"], ["--cpus-per-task 0", "at least 1"]),
    ("threads-zero", ["--threads", "0"], ["--threads 0", "at least 1"]),
    ("array-parallelism-zero", ["--array-parallelism", "0"], ["--array-parallelism 0", "at least 1"]),
]

SWEEP_CASES = [  # (case, sweep file text, fragments of the one error line)
    ("sweep-name-newline", 'name = "s\'\\ntouch pwned #"\n[grid]\nseed = [0]\n', ["name", "control character"]),
    ("sweep-name-escapes", 'name = "../../escape"\n[grid]\nseed = [0]\n', ["name", "plain name"]),
    ("sweep-name-absolute", 'name = "/tmp/escape"\n[grid]\nseed = [0]\n', ["name", "plain name"]),
    ("sweep-name-not-text", "name = 5\n[grid]\nseed = [0]\n", ["name must be a string"]),
    ("sweep-data-not-text", "data = 5\n[grid]\nseed = [0]\n", ["data must be a string"]),
]


@pytest.mark.parametrize(("case", "args", "words"), SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES])
def test_submit_refuses_in_one_line(ph32, tmp_path, case, args, words):
    run_dir = tmp_path / "runs" / "r"
    base = ["--gan", "dcgan64", "--data", ph32, "--cluster", "local", "--dry-run", *TINY32]
    if "--run-dir" not in args:
        base += ["--run-dir", run_dir]
    assert_one_line_error(run_cli("submit", *base, *args, check=False), *words)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize(("case", "text", "words"), SWEEP_CASES, ids=[c[0] for c in SWEEP_CASES])
def test_sweep_files_are_refused_in_one_line(ph32, tmp_path, case, text, words):
    sweep = tmp_path / "sweeps" / "s.toml"
    sweep.parent.mkdir()
    sweep.write_text(text)
    proc = run_cli("submit", "--sweep", sweep, "--gan", "dcgan64", "--data", ph32, "--cluster", "local",
                   "--dry-run", *TINY32, check=False)  # fmt: skip
    assert_one_line_error(proc, *words)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["s.toml", "sweeps"]


def _script(stderr: str) -> str:
    """The sbatch script a dry run printed (it ends before the first '# RUN_DIR: overrides' line)."""
    return stderr.split("\n# /", 1)[0]


@pytest.mark.skipif(subprocess.run(["which", "sbatch"], capture_output=True).returncode != 0, reason="no sbatch")
def test_dry_run_prints_the_script_verbatim_to_a_pipe_and_odd_names_stay_quoted(ph32, tmp_path):
    # Quotes, $() and spaces are legal in a name: they must come out quoted, never run.
    name = "a b$(touch pwned)'q`id`"
    run_dir = tmp_path / ("long-" + "x" * 120) / name
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # a pipe, no terminal width
    proc = subprocess.run(
        [sys.executable, "-m", "hpcgan", "submit", "--gan", "dcgan64", "--data", str(ph32), "--cluster", "slurm",
         "--run-dir", str(run_dir), "--dry-run", *TINY32],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    script = _script(proc.stderr)
    output = f"#SBATCH --output={shlex.quote(str(run_dir / 'slurm' / '%j_0_log.out'))}"
    assert output in script.splitlines(), script  # one line, not wrapped at 80 columns
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # Run the script's non-SLURM lines with srun and python replaced by echo: nothing of the name runs.
    runnable = script.replace("srun ", "echo ").replace("export SUBMITIT_EXECUTOR=slurm", "")
    subprocess.run(["bash", "-c", runnable], cwd=tmp_path, capture_output=True, timeout=30)
    assert not (tmp_path / "pwned").exists()
    assert not run_dir.exists()


# -- 2. checkpoints: pruning keeps what this run wrote; damaged markers are skipped ------------------


def _save(run_dir: Path, step: int, keep: int = 2) -> Path:
    import torch

    from hpcgan.train.checkpoint import save_checkpoint

    return save_checkpoint(run_dir, step, {"step": step, "w": torch.full((4,), float(step))}, keep)


def _steps(run_dir: Path) -> list[int]:
    from hpcgan.runs.checkpoints import committed, step_of

    return sorted(step_of(p) for p in committed(run_dir))


PRUNE_CASES = [  # (case, steps already there, how to damage them, steps this run saves, keep, steps left after)
    ("newer-old-run", [28, 29, 30], None, [5, 10, 15], 2, [10, 15, 28, 29, 30]),
    ("newer-all-damaged", [28, 29, 30], "truncate", [5, 10, 15], 2, [10, 15, 28, 29, 30]),
    ("newer-markers-empty", [28, 29, 30], "{}", [5, 10], 2, [5, 10, 28, 29, 30]),
    ("same-run-continues", [10, 20], None, [30, 40], 3, [20, 30, 40]),
    ("older-damaged-do-not-count", [10, 20], "truncate", [30], 2, [10, 20, 30]),
    ("older-damaged-go-after-keep", [10, 20], "truncate", [30, 40], 2, [30, 40]),
]


@pytest.mark.parametrize(("case", "before", "damage", "saves", "keep", "left"), PRUNE_CASES,
                         ids=[c[0] for c in PRUNE_CASES])  # fmt: skip
def test_pruning_never_deletes_what_this_run_just_wrote_nor_newer_files(tmp_path, case, before, damage, saves,
                                                                        keep, left):  # fmt: skip
    from hpcgan.train.checkpoint import load_checkpoint

    run = tmp_path / "run"
    for step in before:
        path = _save(run, step, keep=100)
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:50])
        elif damage is not None:
            path.with_suffix(".json").write_text(damage)
    old = file_digests(run / "checkpoints", "*")
    for step in saves:
        written = _save(run, step, keep)
        assert load_checkpoint(written)["step"] == step  # the checkpoint just written is there and loads
    assert _steps(run) == left
    newer = {n: d for n, d in old.items() if int(n[5:12]) > max(saves)}
    assert {n: d for n, d in file_digests(run / "checkpoints", "*").items() if n in newer} == newer


MARKER_CASES = [  # (case, what the newest checkpoint's marker holds): skipped with a warning, not a traceback
    ("invalid-json", b'{"bytes": '),
    ("empty-object", b"{}"),
    ("a-list", b"[]"),
    ("null", b"null"),
    ("bytes-as-text", b'{"bytes": "12", "sha256": "ab"}'),
    ("not-utf8", b"\xff\xfe\x00"),
    ("wrong-sha", None),
]


@pytest.mark.parametrize(("case", "marker"), MARKER_CASES, ids=[c[0] for c in MARKER_CASES])
def test_a_damaged_commit_marker_is_skipped_with_a_warning(tmp_path, case, marker):
    import json

    from hpcgan.train.checkpoint import latest_valid

    run = tmp_path / "run"
    _save(run, 10)
    newest = _save(run, 20)
    if marker is None:
        content = json.loads(newest.with_suffix(".json").read_text())
        marker = json.dumps(dict(content, sha256="0" * 64)).encode()
    newest.with_suffix(".json").write_bytes(marker)
    with pytest.warns(UserWarning, match="skipping checkpoint") as caught:
        path, state = latest_valid(run)
    assert path.name == "step-0000010.pt" and state["step"] == 10
    assert all("\n" not in str(w.message) for w in caught)


def test_a_marker_that_is_a_folder_is_skipped(tmp_path):
    from hpcgan.train.checkpoint import latest_valid

    run = tmp_path / "run"
    _save(run, 10)
    (run / "checkpoints" / "step-0000020.json").mkdir()
    (run / "checkpoints" / "step-0000020.pt").write_bytes(b"x")
    with pytest.warns(UserWarning, match="skipping checkpoint"):
        assert latest_valid(run)[0].name == "step-0000010.pt"


def test_move_aside_keeps_the_old_run_whole_out_of_the_way(tmp_path):
    from hpcgan.runs.checkpoints import move_aside
    from hpcgan.train.checkpoint import latest_valid

    run = tmp_path / "run"
    for step in (28, 29, 30):
        _save(run, step, keep=100)
    (run / "metrics.jsonl").write_text('{"step": 30}\n')
    before = file_digests(run / "checkpoints", "*")
    aside = move_aside(run, ("checkpoints", "metrics.jsonl", "samples"))  # samples/ absent: fine
    assert aside is not None and aside.parent == run and aside.name.startswith("replaced-")
    assert file_digests(aside / "checkpoints", "*") == before and (aside / "metrics.jsonl").is_file()
    assert not (run / "checkpoints").exists() and latest_valid(run) is None
    _save(run, 10)
    second = move_aside(run)
    assert second is not None and second != aside and file_digests(aside / "checkpoints", "*") == before
    assert move_aside(run) is None  # nothing left to move


def test_orphaned_temp_files_of_killed_saves_are_removed(tmp_path):
    from hpcgan.runs.checkpoints import remove_orphaned_temps

    run = tmp_path / "run"
    _save(run, 10)
    committed_files = file_digests(run / "checkpoints", "step-*")
    orphans = [run / "checkpoints" / n for n in (".step-0000020.pt.k3j_x.tmp", ".best.pt.abc.tmp")]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 1000)
    assert sorted(remove_orphaned_temps(run)) == sorted(orphans)
    assert file_digests(run / "checkpoints", "*") == committed_files


def _with_file_size_limit(limit: int, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python with files capped at `limit` bytes: writes beyond it fail with
    EFBIG, as a full disk fails them with ENOSPC (SIGXFSZ ignored, so the write returns the error)."""
    prelude = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n")  # fmt: skip
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)  # fmt: skip


def test_a_checkpoint_write_that_fails_is_one_line_and_keeps_the_earlier_ones(tmp_path):
    run = tmp_path / "run"
    _save(run, 10)
    before = file_digests(run / "checkpoints", "*")
    code = "\n".join([
        "import sys, pathlib, torch",
        "from hpcgan.errors import UserError",
        "from hpcgan.train.checkpoint import save_checkpoint",
        "try:",
        f"    save_checkpoint(pathlib.Path({str(run)!r}), 20, {{'w': torch.zeros(1 << 20)}}, 2)",
        "except UserError as exc:",
        "    print(exc, file=sys.stderr)",
        "    sys.exit(2)",
    ])  # fmt: skip
    proc = _with_file_size_limit(1 << 20, code, REPO)
    assert_one_line_error(proc, "step-0000020.pt", "could not save", "earlier checkpoints are kept")
    assert file_digests(run / "checkpoints", "*") == before  # no temp file, no uncommitted .pt


def test_a_new_run_into_an_old_run_dir_keeps_its_checkpoints_and_a_bad_marker_is_skipped(ph32, tmp_path):
    run = tmp_path / "run"
    train = ["train", "--gan", "dcgan64", "--data", ph32, "--run-dir", run, *TINY32, "checkpoint.keep=2"]
    run_cli(*train, "train.steps=30", "checkpoint.every=10", threads=1)
    old = file_digests(run / "checkpoints", "step-*")
    assert _steps(run) == [20, 30]
    # --resume none into it: refused in one line, nothing touched; with --overwrite the old files move aside.
    refused = run_cli(*train, "train.steps=5", "checkpoint.every=5", "--resume", "none", check=False, threads=1)
    assert_one_line_error(refused, "step-0000030.pt", "--overwrite")
    assert file_digests(run / "checkpoints", "step-*") == old
    run_cli(*train, "train.steps=10", "checkpoint.every=5", "--resume", "none", "--overwrite", threads=1)
    assert _steps(run) == [5, 10]
    (aside,) = run.glob("replaced-*")
    assert file_digests(aside / "checkpoints", "step-*") == old  # the earlier run's checkpoints, intact
    # A marker of {} on the newest: --resume auto warns and takes the next one, no traceback.
    (run / "checkpoints" / "step-0000010.json").write_text("{}")
    proc = run_cli(*train, "train.steps=8", "checkpoint.every=0", threads=1)
    assert "Traceback" not in proc.stderr and "not a commit marker" in proc.stderr
    assert "done: step 8" in proc.stderr + proc.stdout and _steps(run) == [5, 8, 10]


# -- 4. the hold: of two trainers taking over a dead job's hold at once, exactly one wins -------------


def _race_for_holds(root: str, trials: int, barrier, results) -> None:
    """One racer (a real process): take the hold of each trial's run dir when every racer is ready."""
    os.environ.pop("SLURM_JOB_ID", None)
    os.environ.pop("SLURM_ARRAY_JOB_ID", None)
    from hpcgan.errors import UserError
    from hpcgan.runs.hold import acquire

    outcomes = []
    for trial in range(trials):
        barrier.wait()
        try:
            stale = acquire(Path(root) / f"t{trial:03d}")
            outcomes.append("won" if stale else "won-without-stale")
        except UserError as exc:
            outcomes.append("refused" if "held by pid" in str(exc) or "another job" in str(exc) else str(exc))
    results.put((os.getpid(), outcomes))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("racers", [2, 3])
def test_exactly_one_of_racing_trainers_takes_over_a_stale_hold(tmp_path, racers):
    import json
    import multiprocessing

    trials = 150
    dead = _dead_pid()
    for trial in range(trials):
        (tmp_path / f"t{trial:03d}").mkdir()
        hold = {"job_id": None, "host": os.uname().nodename, "pid": dead, "since": 0}
        (tmp_path / f"t{trial:03d}" / "HOLD.json").write_text(json.dumps(hold))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(racers), ctx.Queue()
    procs = [ctx.Process(target=_race_for_holds, args=(str(tmp_path), trials, barrier, results)) for _ in range(racers)]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for trial in range(trials):
        per_racer = [o[trial] for o in outcomes.values()]
        assert sorted(per_racer) == ["refused"] * (racers - 1) + ["won"], (trial, per_racer)
        holder = json.loads((tmp_path / f"t{trial:03d}" / "HOLD.json").read_text())
        assert outcomes[holder["pid"]][trial] == "won"  # the file names the winner
    assert not list(tmp_path.glob("*/.HOLD*"))  # the lock file and temp files are gone


# -- 3. two shard jobs into one OUT; 7. a write that fails (disk full) -------------------------------


def _hpcgan(*args: str | Path, preexec=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hpcgan", *map(str, args)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=preexec,
                            env=dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1"))  # fmt: skip


def _source_images(root: Path, n: int = 24) -> Path:
    from tests.conftest import make_image

    for i in range(n):
        make_image(root / ("NORMAL" if i % 2 else "PNEUMONIA") / f"img{i:03d}.png", 70, 60, seed=i)
    return root


CONCURRENT_CASES = [  # (case, the command writing into OUT, given SRC and OUT)
    ("phantom", lambda src, out: ["phantom", out, "--n", "256", "--size", "32", "--shard-size", "64", "--workers=1"]),
    ("shard", lambda src, out: ["shard", src, out, "--size", "32", "--shard-size", "8", "--workers", "1"]),
]


@pytest.mark.parametrize(("case", "command"), CONCURRENT_CASES, ids=[c[0] for c in CONCURRENT_CASES])
def test_a_second_shard_job_into_the_same_out_stops_at_once_and_the_first_is_unharmed(tmp_path, case, command):
    import json
    import signal
    import time

    from hpcgan.atomic import sha256_file
    from hpcgan.data.index import content_hash

    src, out = _source_images(tmp_path / "src"), tmp_path / "out"
    first = _hpcgan(*command(src, out))
    try:
        deadline = time.time() + 120
        while not (out / ".lock").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # it holds the lock, mid-run: the second job arrives now
        assert first.poll() is None, "the first job ended before the second could start"
        second = run_cli(*command(src, out), check=False)
        assert_one_line_error(second, str(out), "another shard job")
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    index = json.loads((out / "index.json").read_text())
    for split in index["splits"].values():
        for shard in split["shards"]:
            assert sha256_file(out / shard["name"]) == shard["sha256"]
    assert index["content_hash"] == content_hash(index["splits"])
    run_cli(*command(src, tmp_path / "alone"))
    assert file_digests(out) == file_digests(tmp_path / "alone")  # as if it had been alone
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no lock, no temp file left


def test_temp_files_of_a_killed_shard_job_are_removed_at_the_next_start(tmp_path):
    from tests.conftest import kill_after_shards

    out = tmp_path / "out"
    args = ["phantom", out, "--n", "512", "--size", "32", "--shard-size", "32", "--workers", "1"]
    kill_after_shards(*args, out=out, at_least=2)
    orphans = [out / ".train-000009.tar.4242-deadbeef.tmp", out / ".train-000003.tar.tmp", out / ".index.json.x1.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"\0" * 4096)
    (out / ".notes.tmp").write_text("the user's own file")  # not ours: left alone
    run_cli(*args)
    assert sorted(p.name for p in out.glob(".*")) == [".notes.tmp"]
    run_cli(*args[:1], tmp_path / "alone", *args[2:])
    assert file_digests(out) == file_digests(tmp_path / "alone")


def _file_size_limit(limit: int):
    def preexec() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


DISK_FULL_CASES = [  # (case, phantom args, file size limit in bytes, the file the error names)
    # one image per shard (a 10 KB tar): the shards fit, .progress.json outgrows 12 KB after ~40 of them
    ("progress-record", ["--n", "100", "--shard-size", "1"], 12000, ".progress.json"),
    ("first-shard", ["--n", "64", "--shard-size", "64"], 20000, "train-000000.tar"),
]


@pytest.mark.parametrize(("case", "args", "limit", "names"), DISK_FULL_CASES, ids=[c[0] for c in DISK_FULL_CASES])
def test_a_failed_write_is_one_line_naming_the_file_and_keeps_what_was_committed(tmp_path, case, args, limit, names):
    import json

    out = tmp_path / "out"
    command = ["phantom", out, "--size", "32", "--workers", "1", *args]
    proc = _hpcgan(*command, preexec=_file_size_limit(limit))
    stdout, stderr = proc.communicate(timeout=300)
    assert_one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), names,
                          "could not write", "re-run")  # fmt: skip
    assert not list(out.glob(".*.tmp")) and not (out / "index.json").exists()
    committed = {}
    if (out / ".progress.json").exists():
        from hpcgan.atomic import sha256_file

        state = json.loads((out / ".progress.json").read_text())
        committed = {s["name"]: s["sha256"] for split in state["splits"].values() for s in split["shards"]}
        assert all(sha256_file(out / name) == sha for name, sha in committed.items())
    before = file_digests(out)
    run_cli(*command)  # without the limit: resumes after the committed shards
    assert {n: d for n, d in file_digests(out).items() if n in committed} == {n: before[n] for n in committed}
    run_cli(*command[:1], tmp_path / "alone", *command[2:])
    assert file_digests(out) == file_digests(tmp_path / "alone")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_line_and_the_shards_before_stay(tmp_path):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "out"
        args = ["--n", "128", "--size", "32", "--shard-size", "16", "--workers", "1"]  # ~110 KB shards
        proc = run_cli("phantom", out, *args, check=False)
        assert_one_line_error(proc, "No space left on device", "could not write", "re-run")
        assert not list(out.glob(".*.tmp"))
        shards = file_digests(out)
        assert shards, "some shards fit before the disk filled up"
        import shutil

        shutil.copytree(out, tmp_path / "out")  # "more space": resume elsewhere
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    run_cli("phantom", tmp_path / "out", *args)
    run_cli("phantom", tmp_path / "alone", *args)
    assert file_digests(tmp_path / "out") == file_digests(tmp_path / "alone")
    assert {n: d for n, d in file_digests(tmp_path / "out").items() if n in shards} == shards


# -- 5. damaged shard sets: refused in one line when opened, or damaged samples skipped and counted ---


def _copy_set(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("contact_sheet.png"))
    return dst


def _rewrite_member(shard: Path, key: str, suffix: str, change) -> None:
    """Rewrite one member of a tar (change(bytes) -> bytes, or None to drop it), as a crafted or
    damaged shard would hold it."""
    import io
    import tarfile

    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            if member.name == f"{key}.{suffix}":
                data = change(data)
                if data is None:
                    continue
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data))


def _reindex(root: Path) -> None:
    """Make index.json agree with the (damaged) shards again: only the samples are wrong then."""
    import json

    from hpcgan.atomic import sha256_file
    from hpcgan.data.index import content_hash

    index = json.loads((root / "index.json").read_text())
    for split in index["splits"].values():
        for shard in split["shards"]:
            shard["bytes"], shard["sha256"] = (root / shard["name"]).stat().st_size, sha256_file(root / shard["name"])
    index["content_hash"] = content_hash(index["splits"])
    (root / "index.json").write_text(json.dumps(index))


def _png(side: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (side, side), 128).save(buf, "PNG")
    return buf.getvalue()


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]


VICTIM = "train-0000005"  # a sample of the first shard

SAMPLE_DAMAGE = [  # (case, member suffix, change): the index is then made to agree, so only the sample is bad
    ("png-flipped-bytes", "png", _flip_middle),
    ("not-an-image", "png", lambda data: b"<html>not a png</html>"),
    ("wrong-size", "png", lambda data: _png(16)),
    ("empty-image", "png", lambda data: b""),
    ("label-outside-classes", "cls", lambda data: b"7"),
    ("label-negative", "cls", lambda data: b"-1"),
    ("label-not-a-number", "cls", lambda data: b"opacity"),
]


@pytest.fixture(scope="module")
def sample_damaged(ph32, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("damaged")
    sets = {}
    for case, suffix, change in SAMPLE_DAMAGE:
        damaged = _copy_set(ph32, root / case)
        _rewrite_member(damaged / "train-000000.tar", VICTIM, suffix, change)
        _reindex(damaged)
        sets[case] = damaged
    return sets


def _epoch(shards: Path, rank: int, workers: int, resume: dict | None = None):
    from hpcgan.data.loader import ShardLoader

    loader = ShardLoader(shards, 8, seed=0, rank=rank, world_size=2, num_workers=workers)
    if resume is not None:
        loader.load_state_dict(resume)
    batches = [(x.clone(), y.clone()) for x, y in loader]
    loader.close()
    return loader, batches


@pytest.mark.parametrize("case", [c[0] for c in SAMPLE_DAMAGE])
def test_a_damaged_sample_is_skipped_and_counted_with_full_equal_batches_and_exact_resume(sample_damaged, case):
    import torch

    shards = sample_damaged[case]
    skipped = 0
    for rank in (0, 1):
        loader, batches = _epoch(shards, rank, workers=0)
        assert len(batches) == len(loader) == 8 and all(x.shape == (8, 1, 32, 32) for x, _ in batches)
        assert all(((y >= 0) & (y < 2)).all() for _, y in batches)
        skipped += loader.skipped
        if loader.skipped:
            assert loader.skip_messages[0].startswith("train-000000.tar sample 5: "), loader.skip_messages
            assert loader.state_dict()["skipped"] == 1
            # The same with worker processes, and resumed mid-epoch: the very same batches and count.
            with_workers = _epoch(shards, rank, workers=2)[1]
            assert all(torch.equal(a, b) for (a, _), (b, _) in zip(batches, with_workers, strict=True))
            resumed_loader, resumed = _epoch(shards, rank, 0, resume={"epoch": 0, "batch": 3, "skipped": 0})
            assert all(torch.equal(a, b) and torch.equal(la, lb)
                       for (a, la), (b, lb) in zip(batches[3:], resumed, strict=True))  # fmt: skip
    assert skipped == 1  # the one damaged sample, once, on the rank that reads its shard


@pytest.mark.parametrize("case", [c[0] for c in SAMPLE_DAMAGE])
def test_training_on_a_damaged_sample_goes_on_and_inspect_reports_it(sample_damaged, tmp_path, case):
    shards = sample_damaged[case]
    proc = run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", tmp_path / "run", *TINY32,
                   "train.steps=8", "checkpoint.every=0", threads=1)  # fmt: skip
    assert "Traceback" not in proc.stderr and (tmp_path / "run" / "checkpoints" / "step-0000008.pt").is_file()
    proc = run_cli("inspect", shards, "--sheet", tmp_path / "sheet.png", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    problems = [line for line in proc.stderr.splitlines() if line.startswith("problem: ")]
    assert any("train-000000.tar" in line and VICTIM in line for line in problems), proc.stderr
    assert any("intact samples" in line for line in problems)  # 63 intact, the index says 64
    assert (tmp_path / "sheet.png").is_file()


def _truncate(root: Path) -> None:
    shard = root / "train-000001.tar"
    shard.write_bytes(shard.read_bytes()[:30000])


def _flip_shard_byte(root: Path) -> None:
    shard = root / "train-000001.tar"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))


def _edit_index(change):
    def edit(root: Path) -> None:
        import json

        new = change(json.loads((root / "index.json").read_text()))
        (root / "index.json").write_text(new if isinstance(new, str) else json.dumps(new))

    return edit


def _rename_shard(name: str):
    def edit(index: dict) -> dict:
        index["splits"]["train"]["shards"][1]["name"] = name
        return index

    return edit


def _set_field(key: str, value):
    def edit(index: dict) -> dict:
        index["splits"]["train"]["shards"][0][key] = value
        return index

    return edit


SET_DAMAGE = [  # (case, damage(root), fragments of the one line, what `hpcgan inspect` does: "lines" or "one-line")
    ("shard-truncated", _truncate, ["train-000001.tar", "bytes"], "lines"),
    ("shard-byte-flipped", _flip_shard_byte, ["train-000001.tar", "sha256"], "lines"),
    ("shard-missing", lambda root: (root / "train-000001.tar").unlink(), ["train-000001.tar", "missing"], "lines"),
    ("index-name-escapes", _edit_index(_rename_shard("../x.tar")), ["'../x.tar'", "not a file name inside"],
     "one-line"),
    ("index-name-absolute", _edit_index(_rename_shard("/etc/passwd")), ["'/etc/passwd'", "not a file name"],
     "one-line"),
    ("index-name-not-text", _edit_index(_rename_shard(7)), ["shard name 7"], "one-line"),
    ("index-not-json", _edit_index(lambda index: '{"splits": '), ["index.json", "not a valid shard index"],
     "one-line"),
    ("index-a-list", _edit_index(lambda index: []), ["index.json", "not an object"], "one-line"),
    ("index-count-text", _edit_index(_set_field("count", "64")), ["count '64'"], "one-line"),
    ("index-no-splits", _edit_index(lambda index: dict(index, splits={})), ["no splits"], "one-line"),
    ("index-no-classes", _edit_index(lambda index: dict(index, classes=[])), ["classes"], "one-line"),
    ("index-size-text", _edit_index(lambda index: dict(index, image_size="32")), ["image_size"], "one-line"),
    ("index-extension", _edit_index(lambda index: dict(index, extension="exe")), ["extension 'exe'"], "one-line"),
    ("index-count-wrong", _edit_index(_set_field("count", 60)), ["train-000000.tar", "holds 64", "says 60"],
     "lines"),
]


@pytest.mark.parametrize(("case", "damage", "words", "inspect"), SET_DAMAGE, ids=[c[0] for c in SET_DAMAGE])
def test_a_damaged_shard_set_is_one_line_for_train_and_lines_for_inspect(ph32, tmp_path, case, damage, words,
                                                                          inspect):  # fmt: skip
    shards = _copy_set(ph32, tmp_path / "set")
    damage(shards)
    before = file_digests(shards, "*")
    proc = run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", tmp_path / "run", *TINY32,
                   "train.steps=2", check=False, threads=1)  # fmt: skip
    assert_one_line_error(proc, *words)
    proc = run_cli("inspect", shards, "--sheet", tmp_path / "sheet.png", check=False)
    if inspect == "one-line":
        assert_one_line_error(proc, *[w for w in words if "holds" not in w])
    else:
        assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
        assert any(line.startswith("problem: ") and words[0] in line for line in proc.stderr.splitlines())
    assert file_digests(shards, "*") == before  # nothing was "repaired" or deleted


def test_raw_shards_overwritten_with_noise_are_refused_and_the_opt_out_trains_on_them(tmp_path):
    import numpy as np

    from hpcgan.data.loader import read_member_table

    shards = tmp_path / "raw"
    run_cli("phantom", shards, "--n", "64", "--size", "32", "--format", "raw", "--shard-size", "32")
    shard = shards / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    noise = np.random.default_rng(0).integers(0, 256, 32 * 32, dtype=np.uint8).tobytes()
    start = read_member_table(shard, "u8").offsets[0]  # the first image's pixels, same size
    data[start : start + len(noise)] = noise
    shard.write_bytes(bytes(data))
    train = ["train", "--gan", "dcgan64", "--data", shards, "--run-dir", tmp_path / "run", *TINY32, "train.steps=2",
             "train.batch_size=8"]  # fmt: skip
    assert_one_line_error(run_cli(*train, check=False, threads=1), "train-000000.tar", "sha256", "damaged")
    opted_out = run_cli(*train, threads=1, env={"HPCGAN_VERIFY_SHARDS": "0"})  # noise of the right size decodes
    assert "Traceback" not in opted_out.stderr


def test_a_batch_with_no_intact_sample_is_one_line_and_an_unknown_split_too(sample_damaged):
    from hpcgan.data.loader import ShardLoader
    from hpcgan.errors import UserError

    loader = ShardLoader(sample_damaged["not-an-image"], 1, seed=0, rank=0, world_size=1)
    with pytest.raises(UserError, match="every sample of a batch is damaged") as caught:
        for _ in range(2):
            list(loader)
    assert "\n" not in str(caught.value) and loader.skipped == 0  # the failed batch is not handed out
    with pytest.raises(UserError, match="has no split 'test'"):
        ShardLoader(sample_damaged["not-an-image"], 1, split="test")


# -- 6./7. config values and flags: one validation pass with ranges, before anything starts ----------

CONFIG_CASES = [  # (case, overrides or flags for `hpcgan train`, fragments of the one error line)
    ("grad clip negative", ["optim.grad_clip=-1"], ["optim.grad_clip=-1.0", ">= 0"]),
    ("weight clip negative", ["optim.weight_clip=-1"], ["optim.weight_clip=-1.0", ">= 0"]),
    ("z_dim 0", ["model.z_dim=0"], ["model.z_dim=0", ">= 1"]),
    ("z_dim negative", ["model.z_dim=-3"], ["model.z_dim=-3", ">= 1"]),
    ("g_width 0", ["model.g_width=0"], ["model.g_width=0", ">= 1"]),
    ("eval.every negative", ["eval.every=-1"], ["eval.every=-1", ">= 0"]),
    ("checkpoint.every negative", ["checkpoint.every=-5"], ["checkpoint.every=-5", ">= 0"]),
    ("log_every 0", ["train.log_every=0"], ["train.log_every=0", ">= 1"]),
    ("log_every negative", ["train.log_every=-1"], ["train.log_every=-1", ">= 1"]),
    ("sample_every negative", ["train.sample_every=-1"], ["train.sample_every=-1", ">= 0"]),
    ("keep 0", ["checkpoint.keep=0"], ["checkpoint.keep=0", ">= 2"]),
    ("steps fractional", ["train.steps=2.9"], ["train.steps=2.9", "expected int"]),
    ("steps overflowing", ["train.steps=1e999"], ["train.steps=1e999", "expected int"]),
    ("lr negative", ["optim.lr_g=-1"], ["optim.lr_g=-1.0", "> 0"]),
    ("lr nan", ["optim.lr_g=nan"], ["optim.lr_g=nan", "finite"]),
    ("beta1 above 1", ["optim.beta1=2"], ["optim.beta1=2.0", "[0, 1)"]),
    ("seed negative", ["seed=-1"], ["seed=-1", ">= 0"]),
    ("resolution not a power of two", ["model.resolution=48"], ["model.resolution=48", "power of two"]),
    ("ada target out of range", ["train.ada_target=1.5"], ["train.ada_target=1.5", "(-1, 1)"]),
    ("skip fraction 1", ["train.max_skip_fraction=1"], ["train.max_skip_fraction=1.0", "[0, 1)"]),
    ("bool not a bool", ["train.ada=maybe"], ["train.ada=maybe", "expected bool"]),
    ("run dir is a file", ["--run-dir", "{file}"], ["{file}"]),
]


@pytest.mark.parametrize(("case", "args", "words"), CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_values_are_refused_in_one_line_before_training(ph32, tmp_path, case, args, words):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("mine\n")
    fill = lambda items: [str(a_file) if x == "{file}" else x for x in items]  # noqa: E731
    run_dir = [] if "--run-dir" in args else ["--run-dir", tmp_path / "run"]
    proc = run_cli("train", "--gan", "dcgan64", "--data", ph32, *run_dir, *TINY32, "train.steps=2", *fill(args),
                   check=False, threads=1)  # fmt: skip
    assert_one_line_error(proc, *fill(words))
    assert a_file.read_text() == "mine\n" and not (tmp_path / "run" / "checkpoints").exists()


SHARD_FLAG_CASES = [  # (case, `hpcgan shard` arguments given SRC and OUT, fragments of the one error line)
    ("shard size above 1 GB", ["{src}", "{out}", "--shard-size", "2GB"], ["--shard-size 2GB", "1 GB"]),
    ("out is the source", ["{src}", "{src}"], ["inside or around the source"]),
    ("out inside the source", ["{src}", "{src}/shards"], ["inside or around the source"]),
]


@pytest.mark.parametrize(("case", "args", "words"), SHARD_FLAG_CASES, ids=[c[0] for c in SHARD_FLAG_CASES])
def test_shard_flags_are_refused_in_one_line_and_the_source_is_untouched(tmp_path, case, args, words):
    from tests.conftest import make_image

    src = tmp_path / "src"
    for i in range(4):
        make_image(src / "train" / ("A" if i % 2 else "B") / f"{i}.png", 40, 40, seed=i)
    tree = lambda: {str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}  # noqa: E731
    before = tree()
    fill = lambda items: [x.replace("{src}", str(src)).replace("{out}", str(tmp_path / "out")) for x in items]  # noqa: E731
    proc = run_cli("shard", *fill(args), "--size", "32", check=False)
    assert_one_line_error(proc, *words)
    assert tree() == before


def test_eval_of_another_runs_checkpoint_is_refused(ph32, tmp_path):
    runs = tmp_path / "runs"
    for name in ("a", "b"):
        run_cli("train", "--gan", "dcgan64", "--data", ph32, "--run-dir", runs / name, *TINY32, "train.steps=2",
                threads=1)  # fmt: skip
    proc = run_cli("eval", runs / "a", "--checkpoints", "../../b/checkpoints/step-0000002.pt", "--n", "16",
                   check=False)  # fmt: skip
    assert_one_line_error(proc, "--checkpoints ../../b/checkpoints/step-0000002.pt")
    assert not (runs / "a" / "eval.jsonl").exists()


def test_a_sample_grid_that_cannot_be_written_warns_and_training_goes_on(ph32, tmp_path):
    """A failed picture write (here samples/ is a file; disk full takes the same path) is a warning:
    the run finishes and its checkpoints are committed."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "samples").write_text("in the way\n")
    proc = run_cli("train", "--gan", "dcgan64", "--data", ph32, "--run-dir", run_dir, *TINY32, "train.steps=4",
                   "train.sample_every=2", "checkpoint.every=2", threads=1)  # fmt: skip
    assert "sample grid not written" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert (run_dir / "checkpoints" / "step-0000004.json").exists()
    assert (run_dir / "samples").read_text() == "in the way\n"
