"""--container and --container-runtime, shared by the commands that submit jobs (submit, doctor)."""

from __future__ import annotations

import argparse


def add_container_flags(p: argparse.ArgumentParser, what: str = "every task") -> None:
    p.add_argument("--container", metavar="IMAGE",
                   help=f"run {what} in IMAGE with hpcgan installed (slurm/containers/): a .sif or squashfs "
                        "file on a shared file system, or a docker:// reference")  # fmt: skip
    p.add_argument("--container-runtime", default="apptainer", metavar="RUNTIME",
                   help="apptainer (`apptainer exec --nv`; the executable: $HPCGAN_APPTAINER) or pyxis "
                        "(`srun --container-image`)")  # fmt: skip
