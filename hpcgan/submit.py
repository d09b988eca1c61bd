"""`python -m hpcgan.submit ...`: the same as `hpcgan submit ...`."""

import sys

from hpcgan.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main(["submit", *sys.argv[1:]]))
