"""--container on the sbatch script, seen through --dry-run as on a laptop (no SLURM commands on PATH:
rendered, not checked): the srun line starts each task in the image with the job's paths bound, for
Apptainer and for pyxis; odd image paths stay one quoted argument; bad input is one line. (A real job
through a stand-in runtime: tests/test_slurm_containers.py.)"""

import re
import shlex
import shutil
import subprocess

import pytest

from hpcgan.cli.main import main
from tests.conftest import REPO, run_cli

TINY = ["model.g_width=8", "model.d_width=8", "train.batch_size=8"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("containers") / "ph64"
    run_cli("phantom", out, "--n", "16", "--size", "64", "--shard-size", "16")
    return out


@pytest.fixture
def here(tmp_path, monkeypatch):
    """The submission dir; no sbatch/srun/apptainer on PATH, no $HPCGAN_APPTAINER."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    monkeypatch.delenv("HPCGAN_APPTAINER", raising=False)
    (tmp_path / "submit").mkdir()
    monkeypatch.chdir(tmp_path / "submit")
    return tmp_path / "submit"


def dry_run(capsys, *args) -> tuple[int, str]:
    code = main(["submit", "--cluster", "slurm", "--gan", "dcgan64", "--dry-run", *map(str, args), *TINY])
    return code, capsys.readouterr().err


def srun_argv(stderr: str) -> list[str]:
    return shlex.split(next(line for line in stderr.splitlines() if line.startswith("srun ")))


def test_apptainer_wraps_each_task_with_the_paths_bound_and_an_image_path_with_a_space_quoted(
    shards, here, tmp_path, capsys, monkeypatch
):
    image = tmp_path / "images" / "hpcgan 1.sif"
    image.parent.mkdir()
    image.write_bytes(b"")
    run_dir = tmp_path / "runs" / "a"
    code, err = dry_run(capsys, "--data", shards, "--run-dir", run_dir, "--container", image)
    assert code == 0, err
    argv = srun_argv(err)
    assert argv[argv.index("apptainer"):] == [
        "apptainer", "exec", "--nv", "--bind", f"{here},{run_dir},{shards}", str(image),
        "python", "-u", "-m", "submitit.core._submit", str(run_dir / "slurm"),
    ]  # fmt: skip
    script = err.split("\n# /", 1)[0]  # the config follows it
    assert shlex.quote(str(image)) in script
    assert subprocess.run(["/bin/bash", "-n"], input=script, text=True).returncode == 0
    assert not run_dir.exists()
    # The executable from $HPCGAN_APPTAINER; an image under the submission dir needs no bind of its own.
    monkeypatch.setenv("HPCGAN_APPTAINER", "/opt/apptainer 1.3/bin/apptainer")
    (here / "img.sif").write_bytes(b"")
    code, err = dry_run(capsys, "--data", shards, "--run-dir", "runs/b", "--container", "img.sif")
    argv = srun_argv(err)
    start = argv.index("/opt/apptainer 1.3/bin/apptainer")
    assert argv[start + 4 : start + 7] == [f"{here},{shards}", str(here / "img.sif"), "python"]
    monkeypatch.setenv("HPCGAN_APPTAINER", "apptainer\nid")
    code, err = dry_run(capsys, "--data", shards, "--run-dir", "runs/b", "--container", "img.sif")
    assert code == 2 and "$HPCGAN_APPTAINER" in err and "control character" in err, err


def test_pyxis_puts_the_image_mounts_and_workdir_on_srun(shards, here, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "p"
    code, err = dry_run(capsys, "--data", shards, "--run-dir", run_dir, "--container-runtime", "pyxis",
                        "--container", "nvcr.io#nvidia/pytorch:24.05-py3")  # fmt: skip
    assert code == 0, err
    argv = srun_argv(err)
    mounts = ",".join(f"{p}:{p}" for p in (here, run_dir, shards))
    assert argv[argv.index("--container-image=nvcr.io#nvidia/pytorch:24.05-py3"):] == [
        "--container-image=nvcr.io#nvidia/pytorch:24.05-py3", f"--container-mounts={mounts}",
        f"--container-workdir={here}", "python", "-u", "-m", "submitit.core._submit", str(run_dir / "slurm"),
    ]  # fmt: skip
    (here / "hpcgan.sqsh").write_bytes(b"")  # a squashfs file: named by its absolute path
    code, err = dry_run(capsys, "--data", shards, "--run-dir", run_dir, "--container-runtime", "pyxis",
                        "--container", "./hpcgan.sqsh")  # fmt: skip
    assert f"--container-image={here / 'hpcgan.sqsh'}" in srun_argv(err)


def test_a_sweep_array_and_a_local_run_go_through_the_container_too(shards, here, capsys):
    (here / "s.toml").write_text('name = "s"\n[grid]\nseed = [0, 1]\n')
    code, err = dry_run(capsys, "--data", shards, "--sweep", "s.toml", "--container", "docker://pytorch/pytorch")
    assert code == 0, err
    assert "#SBATCH --array=0-1%2" in err.splitlines()
    argv = srun_argv(err)
    assert argv[argv.index("apptainer") :][3:6] == ["--bind", f"{here},{shards}", "docker://pytorch/pytorch"]
    code, err = dry_run(capsys, "--data", shards, "--cluster", "local", "--container", "docker://pytorch/pytorch")
    line = next(line for line in err.splitlines() if line.startswith("# each task runs: "))
    assert shlex.split(line)[4:8] == ["apptainer", "exec", "--nv", "--bind"]


def test_an_eval_array_binds_the_run_and_its_shards(shards, here, tmp_path, capsys):
    run = tmp_path / "runs" / "trained"
    run_cli("train", "--gan", "dcgan64", "--data", shards, "--run-dir", run, *TINY, "train.num_workers=0",
            "train.steps=1", "checkpoint.every=1", threads=1)  # fmt: skip
    code = main(
        ["submit", "--eval", str(run), "--cluster", "slurm", "--dry-run", "--n", "16", "--container", "docker://x"]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    argv = srun_argv(err)
    assert argv[argv.index("apptainer") :][3:7] == ["--bind", f"{here},{run},{shards}", "docker://x", "python"]
    assert argv[-1] == str(run / "eval-slurm")


CASES = [  # (case, options, words in the one line)
    ("newline", ["--container", "a\nb.sif"], ["--container", "control character"]),
    ("missing-sif", ["--container", "missing.sif"], ["--container missing.sif", "no such image file"]),
    ("missing-sqsh", ["--container", "/x/h.sqsh", "--container-runtime", "pyxis"], ["no such image file", "enroot"]),
    ("pyxis-no-image", ["--container-runtime", "pyxis"], ["--container-runtime pyxis", "needs --container"]),
    ("runtime", ["--container", "docker://x", "--container-runtime", "docker"], ["expected apptainer or pyxis"]),
    ("pyxis-local", ["--container", "docker://x", "--container-runtime", "pyxis", "--cluster", "local"],
     ["--container-runtime pyxis", "srun plugin"]),
    ("colon-in-data", ["--container", "docker://x", "colon"], ["--data", "':'", "bind-mounted"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "options", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_container_input_is_one_line_and_leaves_nothing(shards, here, tmp_path, capsys, case, options, words):
    data = shards
    if "colon" in options:
        data = tmp_path / "a:b"
        shutil.copytree(shards, data)
        options = options[:-1]
    code, err = dry_run(capsys, "--data", data, "--run-dir", tmp_path / "runs" / "x", *options)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert all(word in lines[0] for word in words), (words, lines[0])
    assert not (tmp_path / "runs").exists()


def test_the_definition_file_copies_files_that_exist_onto_a_pytorch_cuda_base():
    text = (REPO / "slurm" / "containers" / "hpcgan.def").read_text()
    sections = dict(re.findall(r"^%(\w+)\n(.*?)(?=^%|\Z)", text, flags=re.M | re.S))
    sources = [line.split()[0] for line in sections["files"].splitlines() if line.strip()]
    assert sources and all((REPO / source).exists() for source in sources), sources
    assert re.search(r"^\s+BASE=pytorch/pytorch:[\d.]+-cuda[\d.]+-cudnn\d+-runtime$", sections["arguments"], re.M)
    assert "--constraint" in sections["post"]  # the image's CUDA torch stays
