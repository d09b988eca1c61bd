"""Feature extractors for FID/KID. Each is (an nn.Module: uint8 [B, 1, S, S] -> float [B, D], an
identity string that names it and its weights: the real-statistics cache key).

- `inception`: the standard FID InceptionV3 (TF 2015-12-05 graph, 2048 features; hpcgan/eval/inception.py),
  the one whose FIDs compare with published values. Its identity carries a hash of the weights file.
  Weights are never downloaded: `weights` (`--inception-weights`), $HPCGAN_INCEPTION_WEIGHTS or the torch
  hub cache. Its `logits` give the Inception Score.
- `xrv`: torchxrayvision's chest X-ray DenseNet-121 ("all" weights), 1024 features: FIDs that look at
  chest X-ray features rather than ImageNet ones, but comparable only with other `xrv` FIDs. Needs
  `pip install hpcgan[xrv]` and its weights file (`weights`, $HPCGAN_XRV_WEIGHTS or torchxrayvision's cache).
- `random`: a seeded, randomly initialised conv net, for tests and offline demos. Its FIDs compare
  runs with each other only, never with published values (hence the identity "random-not-comparable").
- Any nn.Module through the Python API (`custom(module, name)`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.errors import UserError
from hpcgan.eval.inception import load_inception, weights_sha256

EXTRACTORS = ("random", "inception", "xrv")
XRV_WEIGHTS_FILE = "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
XRV_WEIGHTS_URL = "https://github.com/mlmed/torchxrayvision/releases/download/v1/" + XRV_WEIGHTS_FILE
XRV_WEIGHTS_ENV = "HPCGAN_XRV_WEIGHTS"


class RandomFeatures(nn.Module):
    """Four stride-2 convs on a 64 px resize, global average pooling: 128 features."""

    num_features = 128

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = [1, 32, 64, 128, 128]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, 2, 1) for a, b in zip(widths[:-1], widths[1:], strict=True))
        with torch.no_grad():
            for conv in self.convs:
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2 / conv.weight[0].numel()) ** 0.5)
                conv.bias.zero_()
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1
        x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
        return x.mean(dim=(2, 3))


class XRVFeatures(nn.Module):
    """torchxrayvision's DenseNet `features2` (ReLU + global average pool of the last block): 1024 features."""

    num_features = 1024

    def __init__(self, densenet: nn.Module) -> None:
        super().__init__()
        self.densenet = densenet.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().mean(1, keepdim=True)  # xrv models take one channel
        x = (x / 255 * 2 - 1) * 1024  # xrv.datasets.normalize(img, 255): the [-1024, 1024] scale it was trained on
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)  # as xrv's own resize
        return self.densenet.features2(x)


def _load_xrv_file(path: Path) -> Any:
    """xrv's release files are whole pickled models; unpickling runs code, so only torch's restricted
    unpickler (weights_only=True) is used, with xrv's and torch.nn's module classes allowed by name.
    A file that needs anything else is refused, not run."""
    import torchxrayvision as xrv

    allowed = [xrv.models.DenseNet, *(v for v in vars(nn).values() if isinstance(v, type) and issubclass(v, nn.Module))]
    allowed += [getattr(xrv.models, n) for n in ("_DenseLayer", "_DenseBlock", "_Transition") if hasattr(xrv.models, n)]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def _xrv(weights: str | Path | None) -> tuple[nn.Module, str]:
    try:
        import torchxrayvision as xrv
    except (ImportError, RuntimeError, OSError) as exc:  # a broken torchvision raises RuntimeError
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"--extractor xrv needs torchxrayvision: pip install 'hpcgan[xrv]' ({first_line})") from None
    default = Path.home() / ".torchxrayvision" / "models_data" / XRV_WEIGHTS_FILE
    path = Path(weights or os.environ.get(XRV_WEIGHTS_ENV) or default)
    if not path.is_file():
        raise UserError(
            f"--extractor xrv: no weights at {path}; download {XRV_WEIGHTS_URL} (compute nodes are often offline) "
            f"and pass its path, set {XRV_WEIGHTS_ENV}=FILE or put it at {default}"
        )
    try:
        saved = _load_xrv_file(path)
        if isinstance(saved, nn.Module):
            for mod in saved.modules():  # models pickled by old torch lack this (xrv applies the same patch)
                if not hasattr(mod, "_non_persistent_buffers_set"):
                    mod._non_persistent_buffers_set = set()
            saved = saved.state_dict()
        densenet = xrv.models.DenseNet(weights=None)
        densenet.features.load_state_dict({k[9:]: v for k, v in saved.items() if k.startswith("features.")})
    except Exception as exc:  # noqa: BLE001 - torch raises many types for files that aren't these weights
        raise UserError(f"{path}: not torchxrayvision DenseNet-121 weights ({type(exc).__name__}); expected "
                        f"{XRV_WEIGHTS_URL}") from None  # fmt: skip
    return XRVFeatures(densenet), f"xrv-densenet121-{weights_sha256(path)[:12]}"


def build_extractor(name: str, seed: int = 0, weights: str | Path | None = None) -> tuple[nn.Module, str]:
    """(module, identity). `weights`: the weights file of `inception` / `xrv` (else the env variable or cache)."""
    if name == "random":
        return RandomFeatures(seed), f"random-not-comparable-seed{seed}"
    if name == "inception":
        return load_inception(weights)
    if name == "xrv":
        return _xrv(weights)
    raise UserError(f"--extractor {name}: expected one of {', '.join(EXTRACTORS)}")


def custom(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    """Any module with `num_features`; the identity hashes its weights, so the cache follows them."""
    h = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        h.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return module, f"{name}-{h.hexdigest()[:12]}"
