"""--container IMAGE: every task of a job runs inside an image with hpcgan installed
(slurm/containers/hpcgan.def), through Apptainer (`apptainer exec --nv`) or the pyxis srun plugin
(`srun --container-image`).

submitit starts each task as `srun ... PYTHON -u -m submitit.core._submit FOLDER`, where PYTHON is
its executor's `python` parameter: Apptainer goes there, pyxis's options go on the srun line. The
paths a job reads and writes (the submission dir, the run dir, the shards, weight files) are
bind-mounted at the same place inside, so the pickled job's paths mean the same thing there.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from hpcgan.errors import UserError
from hpcgan.launch.submit_checks import RUNTIMES, check_text

# Image references the runtime pulls on the node (docker://, oras://, library://...): passed through.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Apptainer's --bind and pyxis's --container-mounts are lists split on ',' with SRC:DST[:FLAGS] items.
_BIND_SEPARATORS = (",", ":")


@dataclass(frozen=True)
class ContainerLaunch:
    python: str  # the command submitit runs in place of its own interpreter
    srun_args: list[str]  # added to the srun line (pyxis)


def apptainer_executable() -> str:
    """$HPCGAN_APPTAINER, else `apptainer`, else `singularity` when only that one is on this PATH
    (clusters that still ship SingularityCE; the same `exec --nv --bind` options)."""
    chosen = os.environ.get("HPCGAN_APPTAINER")
    if chosen:
        check_text("$HPCGAN_APPTAINER", chosen)  # it starts every task's command line
        return chosen
    if shutil.which("apptainer") is None and shutil.which("singularity") is not None:
        return "singularity"
    return "apptainer"


def check_image(image: str, runtime: str) -> str:
    """The image as the nodes will name it: a local file made absolute, a registry reference as given.
    A missing local image fails here, not on every node after a queue wait."""
    if _URI.match(image):
        return image
    path = Path(image).expanduser()
    # pyxis also takes enroot references without a scheme (nvcr.io#nvidia/pytorch:24.05-py3).
    looks_local = runtime == "apptainer" or image.startswith(("/", "./", "../", "~")) or path.exists()
    if not looks_local:
        return image
    if not path.exists():
        expected = ("an .sif from `apptainer build` on a shared file system, or a docker:// reference"
                    if runtime == "apptainer" else "a squashfs from `enroot import` on a shared file system, or a "
                    "registry reference such as nvcr.io#nvidia/pytorch:24.05-py3")  # fmt: skip
        raise UserError(f"--container {image}: no such image file (expected {expected})")
    return str(path.resolve())


def container_launch(image: str, runtime: str, binds: list[tuple[str, Path]], workdir: Path) -> ContainerLaunch:
    """How submitit starts each task in `image` with `runtime`; `binds` are (the option that named
    the path, the path), mounted at the same place inside; `workdir` is where the task starts."""
    paths = _bind_paths([("the current directory", workdir), *binds])
    if runtime == "apptainer":
        # Apptainer passes the host's environment (SLURM_*, SUBMITIT_*, OMP_NUM_THREADS) in by default.
        command = [apptainer_executable(), "exec", "--nv", "--bind", ",".join(paths), image, "python"]
        return ContainerLaunch(shlex.join(command), [])
    if runtime == "pyxis":
        mounts = ",".join(f"{p}:{p}" for p in paths)
        args = [f"--container-image={image}", f"--container-mounts={mounts}", f"--container-workdir={workdir}"]
        return ContainerLaunch("python", args)
    raise ValueError(f"container runtime {runtime!r}: not one of {RUNTIMES} (check_container lets none else through)")


def _bind_paths(binds: list[tuple[str, Path]]) -> list[str]:
    """Absolute paths, each once, none inside another (that one is already visible), never / (that
    would hide the image's own files: a job submitted from / gets no bind for it)."""
    resolved: list[Path] = []
    for flag, path in binds:
        full = path.resolve()
        if full == full.parent:
            continue
        bad = next((sep for sep in _BIND_SEPARATORS if sep in str(full)), None)
        if bad is not None:
            raise UserError(f"{flag} {full}: a {bad!r} in the path cannot be bind-mounted into the container "
                            "(the runtime's mount list splits on ',' and ':')")  # fmt: skip
        resolved.append(full)
    kept = [p for p in resolved if not any(q != p and p.is_relative_to(q) for q in resolved)]
    return [str(p) for p in dict.fromkeys(kept)]
