"""The names a run's numbers get as scalars in TensorBoard and W&B: one scheme for the live loggers
(hpcgan/train/live_loggers.py) and `hpcgan report --tensorboard`, so both show the same tags."""

from __future__ import annotations

import math
import re
from typing import Any

# What metrics.jsonl's training records become, as train/<key>.
TRAIN_SCALARS = ("loss_d", "loss_g", "d_real_acc", "d_fake_acc", "images_per_s", "lr_g", "lr_d", "grad_norm_d",
                 "grad_norm_g", "penalty", "loss_scale_d", "loss_scale_g")  # fmt: skip


def train_tag(key: str) -> str:
    return f"train/{key}"


def series_tag(source: str, extractor: str, n_fake: int | None) -> str:
    """One FID/KID series (fid/<this>, kid/<this>): FIDs compare only at the same extractor and n."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{source}-{extractor}-n{n_fake}")


def record_scalars(record: dict[str, Any]) -> dict[str, float]:
    """A metrics.jsonl record (training or a training-time evaluation) as {tag: finite value}."""
    out = {train_tag(k): float(record[k]) for k in TRAIN_SCALARS if _finite(record.get(k))}
    if _finite(record.get("fid")):
        n_fake = record.get("n_fake") if isinstance(record.get("n_fake"), int) else None
        tag = series_tag("training", str(record.get("extractor") or "?"), n_fake)
        out[f"fid/{tag}"] = float(record["fid"])
        if _finite(record.get("kid")):
            out[f"kid/{tag}"] = float(record["kid"])
    return out


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
