"""The versions a run runs with, recorded in each start event (and shown by `hpcgan report`)."""

from __future__ import annotations

import platform
from importlib import metadata

PACKAGES = ("hpcgan", "torch", "accelerate", "deepspeed", "torchmetrics", "numpy", "submitit", "webdataset",
            "pillow", "matplotlib")  # fmt: skip


def software_versions() -> dict[str, str]:
    """Python, the packages above and the platform, from package metadata (nothing imported)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["platform"] = f"{platform.system()} {platform.release()} ({platform.machine()})"
    return out
