"""The FID InceptionV3: the TensorFlow graph `inception-2015-12-05` that defined FID (TTUR) and the
Inception Score, ported to PyTorch as pytorch-fid and torch-fidelity do, without torchvision.

It differs from torchvision's Inception3 where the TF graph does: the average pools skip the zero
padding (count_include_pad=False) and the last block (Mixed_7c) max-pools its pool branch; fc has
1008 classes. Module names are torchvision's, so pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`
(and torch-fidelity's `weights-inception-2015-12-05-6726825d.pth`) load as they are.

Resize: images go to 299x299 with TensorFlow 1.x bilinear resizing (align_corners=False, source pixel
= destination pixel * in/out, no half-pixel offset), the resize inside the original TF FID graph, as
torch-fidelity reproduces it. PyTorch's `F.interpolate` (half-pixel centres, as pytorch-fid uses) gives
other pixels and so slightly different FIDs; only the TF1 resize gives values comparable with
published TTUR / torch-fidelity numbers. Then (x - 128) / 128, as the graph does.

Weights are never downloaded (compute nodes are often offline): `find_weights` looks at an explicit
path (`--inception-weights`), then $HPCGAN_INCEPTION_WEIGHTS, then the torch hub cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hpcgan.atomic import sha256_file
from hpcgan.errors import UserError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's name
FIDELITY_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's name, same layout
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
WEIGHTS_ENV = "HPCGAN_INCEPTION_WEIGHTS"
SIZE = 299


def resize_like_tf1(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """TF 1.x `resize_bilinear(align_corners=False)` of float [B, C, H, W] to [B, C, size, size].

    Width first, then height, with the same float32 operations in the same order as torch-fidelity's
    `interpolate_bilinear_2d_like_tensorflow1x(method="slow")`, so the result is bit-identical on CPU."""
    for dim in (3, 2):
        n = x.shape[dim]
        pos = torch.arange(size, dtype=x.dtype, device=x.device) * torch.tensor(n / size, dtype=torch.float32)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n - 1)
        frac = (pos - lo.float()).view([size if d == dim else 1 for d in range(4)])
        a, b = x.index_select(dim, lo), x.index_select(dim, hi)
        x = a + (b - a) * frac
    return x


class BasicConv2d(nn.Module):
    """Conv without bias, BatchNorm with TF's eps 0.001, ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | tuple[int, int] = 0
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TF's average pool divides by the number of real (unpadded) pixels
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


# 1xk and kx1 convolutions that keep the spatial size
def _row(cin: int, cout: int, k: int) -> BasicConv2d:
    return BasicConv2d(cin, cout, (1, k), padding=(0, k // 2))


def _col(cin: int, cout: int, k: int) -> BasicConv2d:
    return BasicConv2d(cin, cout, (k, 1), padding=(k // 2, 0))


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch5x5_1, self.branch5x5_2),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionB(nn.Module):
    """35 -> 17 px reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            F.max_pool2d(x, 3, 2),
        ], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = _row(c7, c7, 7)
        self.branch7x7_3 = _col(c7, 192, 7)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = _col(c7, c7, 7)
        self.branch7x7dbl_3 = _row(c7, c7, 7)
        self.branch7x7dbl_4 = _col(c7, c7, 7)
        self.branch7x7dbl_5 = _row(c7, 192, 7)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _chain(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                   self.branch7x7dbl_5),
            self.branch_pool(_avg_pool(x)),
        ], 1)


class InceptionD(nn.Module):
    """17 -> 8 px reduction."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = _row(192, 192, 7)
        self.branch7x7x3_3 = _col(192, 192, 7)
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            _chain(x, self.branch3x3_1, self.branch3x3_2),
            _chain(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4),
            F.max_pool2d(x, 3, 2),
        ], 1)


class InceptionE(nn.Module):
    """Mixed_7b (E_1: padding-free average pool) and Mixed_7c (E_2: the TF graph max-pools here)."""

    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = _row(384, 384, 3)
        self.branch3x3_2b = _col(384, 384, 3)
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _row(384, 384, 3)
        self.branch3x3dbl_3b = _col(384, 384, 3)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3dbl = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        pool = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg_pool(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(b3dbl), self.branch3x3dbl_3b(b3dbl),
            self.branch_pool(pool),
        ], 1)


class FIDInceptionV3(nn.Module):
    """uint8 images [B, 1 or 3, H, W] (0..255) -> float32 [B, 2048] pool features (FID, KID).

    `logits` / `features_and_logits` give the 1008 class logits for the Inception Score. Build it with
    `load_inception`; a bare instance has random weights."""

    num_features = 2048

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False).eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images [B, 1 or 3, H, W], got {list(images.shape)}")
        # Resize on 0..255 before normalising, as the graph does; per channel, so grey is resized once
        x = (resize_like_tf1(images.float()) - 128) / 128
        x = x.expand(-1, 3, -1, -1)
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        x = _chain(F.max_pool2d(x, 3, 2), self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        x = _chain(F.max_pool2d(x, 3, 2), self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                   self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits_from_features(self, features: torch.Tensor, bias: bool = False) -> torch.Tensor:
        """[B, 1008]. Without bias by default: the Inception Score's logits, as in the original IS code
        (pool3 @ softmax weights) and torch-fidelity's `logits_unbiased`."""
        logits = features.mm(self.fc.weight.T)
        return logits + self.fc.bias if bias else logits

    def features_and_logits(self, images: torch.Tensor, bias: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        features = self(images)
        return features, self.logits_from_features(features, bias)

    def logits(self, images: torch.Tensor, bias: bool = False) -> torch.Tensor:
        return self.logits_from_features(self(images), bias)


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(path: str | Path | None = None) -> Path:
    """The weights file: `path`, else $HPCGAN_INCEPTION_WEIGHTS, else the torch hub cache. Never downloads."""
    get = f"download {WEIGHTS_URL} (on a machine with internet: compute nodes are often offline)"
    for given, what in ((path, "--inception-weights"), (os.environ.get(WEIGHTS_ENV) or None, WEIGHTS_ENV)):
        if given is not None:
            if not Path(given).is_file():
                raise UserError(f"{what} {given}: no such file; {get}")
            return Path(given)
    for name in (WEIGHTS_FILE, FIDELITY_WEIGHTS_FILE):
        if (_hub_checkpoints() / name).is_file():
            return _hub_checkpoints() / name
    raise UserError(
        f"FID Inception weights not found: pass --inception-weights FILE, set {WEIGHTS_ENV}=FILE or put the file "
        f"at {_hub_checkpoints() / WEIGHTS_FILE}; {get}"
    )


_SHA256: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str | Path) -> str:
    """sha256 of the file, remembered per (path, mtime, size): the file is ~95 MB."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _SHA256:
        _SHA256[key] = sha256_file(path)
    return _SHA256[key]


def _ignore_counter(key: str) -> bool:
    # BatchNorm's num_batches_tracked: absent from older files, irrelevant in eval mode
    return key.endswith("num_batches_tracked")


def load_inception(weights: str | Path | None = None) -> tuple[FIDInceptionV3, str]:
    """(model on CPU in eval mode, identity "inception-2015-12-05-<sha256 of the file, 12 hex>")."""
    path = find_weights(weights)
    expected = f"a state dict of the FID InceptionV3 ({WEIGHTS_FILE} from {WEIGHTS_URL})"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for files that aren't state dicts
        raise UserError(f"{path}: unreadable by torch.load ({type(exc).__name__}); expected {expected}") from None
    model = FIDInceptionV3()
    want = {k: v.shape for k, v in model.state_dict().items() if not _ignore_counter(k)}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{path}: not a state dict of tensors; expected {expected}")
    state = {k: v for k, v in state.items() if not _ignore_counter(k)}
    problems = [f"missing {k}" for k in want if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in want]
    problems += [f"{k} has shape {list(v.shape)}, not {list(want[k])}" for k, v in state.items()
                 if k in want and v.shape != want[k]]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise UserError(f"{path}: {problems[0]}{more}; expected {expected}")
    model.load_state_dict(state, strict=False)  # strict=False only for num_batches_tracked, checked above
    return model, f"inception-2015-12-05-{weights_sha256(path)[:12]}"
