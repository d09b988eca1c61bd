"""`python -m hpcgan.train ...`: the same as `hpcgan train ...`, for srun and torchrun lines."""

import sys

from hpcgan.cli.main import main

raise SystemExit(main(["train", *sys.argv[1:]]))
