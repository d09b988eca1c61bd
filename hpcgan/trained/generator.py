"""A trained run's generator, ready to draw: from a run directory (its newest valid checkpoint) or
one checkpoint file. The EMA generator when the run kept one, else G."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hpcgan.atomic import sha256_file
from hpcgan.data.label_sets import LabelSets
from hpcgan.errors import UserError
from hpcgan.models.latents import LatentSampler
from hpcgan.runs.checkpoints import read_marker
from hpcgan.runs.layout import RunPaths, run_dir_of_checkpoint
from hpcgan.train.checkpoint import latest_valid, load_checkpoint
from hpcgan.train.config import RunConfig, networks_for

SYNTHETIC_CLASS = "synthetic"  # the one class of an unconditional run's images


@dataclass(frozen=True)
class LoadedGenerator:
    """A run's generator in eval mode, and where it came from."""

    g: nn.Module
    checkpoint: Path
    checkpoint_sha256: str
    run_dir: Path
    step: int
    which: str  # "ema" or "g"
    run_classes: list[str]
    conditional: bool
    resolution: int
    z_dim: int
    device: torch.device
    label_sets: LabelSets | None = None  # a multi-label run's training label sets

    @property
    def multi_label(self) -> bool:
        """Conditioned on label sets (multi-hot) rather than one class."""
        return self.conditional and self.label_sets is not None

    @property
    def classes(self) -> list[str]:
        """The classes it draws: the run's for a conditional generator, else just "synthetic"."""
        return list(self.run_classes) if self.conditional else [SYNTHETIC_CLASS]

    def sampler(self, seed: int = 0) -> LatentSampler:
        """Its images by number, under the one latent rule (hpcgan/models/latents.py)."""
        classes = len(self.run_classes) if self.conditional else 0
        return LatentSampler(self.g, self.z_dim, classes, seed, self.device, self.label_sets if classes else None)


def load_generator(run: str | Path, device: str | torch.device | None = None) -> LoadedGenerator:
    """The generator of RUN: a run directory (its newest valid checkpoint) or one checkpoint file."""
    run = Path(run)
    if run.is_dir():
        found = latest_valid(run)
        if found is None:
            raise UserError(f"RUN {run}: no valid checkpoint in {RunPaths(run).checkpoints}; train the run first")
        path, state = found
    elif run.is_file():
        path, state = run, load_checkpoint(run)
    else:
        raise UserError(f"RUN {run}: no such run directory or checkpoint file")
    try:
        config = RunConfig.from_dict(state["config"])
        classes = [str(c) for c in state["classes"]]
        # Checkpoints from before label sets have no key: single-label.
        label_sets = LabelSets.from_dict(state["label_sets"]) if state.get("label_sets") else None
        which = "ema" if state["ema"] else "g"  # train.ema=0 saves an empty dict
        weights, step = state[which], int(state["step"])
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise UserError(f"{path}: not an hpcgan training checkpoint (no {exc})") from None
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    g, _ = networks_for(config, len(classes))
    try:
        g.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: generator weights do not match its config ({first})") from None
    marker = path.with_suffix(".json")
    # load_checkpoint verified the file against its marker, so the marker's hash is the file's.
    sha = read_marker(marker)["sha256"] if marker.is_file() else sha256_file(path)
    path = path.resolve()
    return LoadedGenerator(
        g=g.to(device).eval().requires_grad_(False),
        checkpoint=path,
        checkpoint_sha256=sha,
        run_dir=run_dir_of_checkpoint(path),
        step=step,
        which=which,
        run_classes=classes,
        conditional=config.model.conditional != "none",
        resolution=config.model.resolution,
        z_dim=config.model.z_dim,
        device=device,
        label_sets=label_sets,
    )
