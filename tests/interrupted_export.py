"""An export stopped part-way, as Ctrl-C would stop it, for the tests that resume it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpcgan.trained.export import export_samples


def export_interrupted(gen, out: Path, n: int, after_images: int, **options) -> None:
    """Start `export_samples` into `out` and interrupt it once more than `after_images` are made."""
    done = [0]

    def stop_part_way(count: int) -> None:
        done[0] += count
        if done[0] > after_images:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_samples(gen, out, n, progress=stop_part_way, **options)
    assert (out / ".progress.json").exists()
