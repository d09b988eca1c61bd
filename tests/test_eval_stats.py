"""FID and KID from streamed float64 feature statistics: equal to torchmetrics on the same feature
module, the same on 2 gloo ranks as on 1, ~0 against itself, the closed form for known Gaussians,
and a clear error with too few samples."""

import json
import subprocess
import sys

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from hpcgan.errors import UserError
from hpcgan.eval.distances import fid, frechet_distance, kid
from hpcgan.eval.feature_stats import FeatureStats
from hpcgan.eval.inception_score import ClassProbStats
from tests.conftest import REPO


class TinyFeatures(torch.nn.Module):
    """A seeded random projection of images to 12 features (not comparable with published FIDs)."""

    num_features = 12

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.project = torch.nn.Linear(3 * 8 * 8, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.project(x.float().flatten(1) / 255))


def images(seed: int, n: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return ((torch.rand(n, 3, 8, 8, generator=gen) * 0.8 + shift) * 255).clamp(0, 255).to(torch.uint8)


def stats_of(model, batches, keep=0) -> FeatureStats:
    s = FeatureStats(model.num_features, keep)
    with torch.no_grad():
        for b in batches:
            s.update(model(b))
    return s


def test_fid_and_kid_equal_torchmetrics_with_the_same_feature_module():
    model = TinyFeatures()
    real, fake = images(1, 300), images(2, 300, shift=0.15)
    ours_real = stats_of(model, real.split(64), keep=300)
    ours_fake = stats_of(model, fake.split(64), keep=300)
    reference = FrechetInceptionDistance(feature=model)
    for r, f in zip(real.split(64), fake.split(64), strict=True):  # the same batches: the same float32 features
        reference.update(r, real=True)
        reference.update(f, real=False)
    ref = reference.compute().item()
    assert fid(ours_real, ours_fake) == pytest.approx(ref, rel=1e-6)
    reference_kid = KernelInceptionDistance(feature=model, subsets=1, subset_size=300)
    for r, f in zip(real.split(64), fake.split(64), strict=True):
        reference_kid.update(r, real=True)
        reference_kid.update(f, real=False)
    ref_kid = reference_kid.compute()[0].item()
    ours_kid = kid(ours_real.features(), ours_fake.features(), subsets=1, subset_size=300)[0]
    assert ours_kid == pytest.approx(ref_kid, rel=1e-4)  # torchmetrics' KID kernels run in float32


def test_two_gloo_ranks_give_the_one_rank_fid(tmp_path):
    out = tmp_path / "fid.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tests" / "dist_fid_job.py"), str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    two = json.loads(out.read_text())
    real = torch.randn(400, 16, generator=torch.Generator().manual_seed(1))
    fake = torch.randn(400, 16, generator=torch.Generator().manual_seed(2)) * 1.2 + 0.3
    one = [FeatureStats(16), FeatureStats(16)]
    one[0].update(real)
    one[1].update(fake)
    assert two["n"] == 400
    assert two["fid"] == pytest.approx(fid(*one), rel=1e-9)
    order = [torch.argsort(x[:, 0]) for x in (real, fake)]
    assert two["kid"][0] == pytest.approx(kid(real[order[0]], fake[order[1]], 1, 400)[0], rel=1e-9)
    logits = torch.randn(400, 10, generator=torch.Generator().manual_seed(3)) * 3
    probs = ClassProbStats(10, splits=4)
    for k, batch in enumerate(logits.split(37)):
        probs.update(batch, k)
    assert two["is"] == pytest.approx(list(probs.score()), rel=1e-9)


def test_a_set_against_itself_is_about_zero_and_known_gaussians_give_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 4, generator=gen)
    s = FeatureStats(4)
    s.update(x)
    assert abs(fid(s, s)) < 1e-8
    # Diagonal Gaussians: FID = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2)).
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0, 0.5]).double(), torch.tensor([1.0, 1.0, 0.0, 0.0]).double()
    v1, v2 = torch.tensor([1.0, 2.0, 0.5, 1.0]).double(), torch.tensor([4.0, 2.0, 1.0, 0.25]).double()
    closed = ((mu1 - mu2) ** 2).sum() + (v1 + v2 - 2 * (v1 * v2).sqrt()).sum()
    exact = frechet_distance(mu1, torch.diag(v1), mu2, torch.diag(v2))
    assert exact == pytest.approx(closed.item(), rel=1e-12)
    a, b = FeatureStats(4), FeatureStats(4)
    a.update(mu1 + v1.sqrt() * torch.randn(200_000, 4, generator=gen, dtype=torch.float64))
    b.update(mu2 + v2.sqrt() * torch.randn(200_000, 4, generator=gen, dtype=torch.float64))
    assert fid(a, b) == pytest.approx(closed.item(), rel=0.02)


def test_too_few_samples_is_a_clear_error_not_nan(tmp_path):
    one = FeatureStats(4)
    one.update(torch.zeros(1, 4))
    with pytest.raises(UserError, match="1 sample"):
        fid(one, one)
    with pytest.raises(UserError, match="KID needs at least 2"):
        kid(torch.zeros(1, 4), torch.zeros(5, 4))
    # Statistics round-trip through an atomic save.
    s = FeatureStats(4, keep=3)
    s.update(torch.randn(10, 4))
    s.save(tmp_path / "real.npz")
    back = FeatureStats.load(tmp_path / "real.npz")
    assert back.n == 10 and torch.equal(back.sum_outer, s.sum_outer) and torch.equal(back.features(), s.features())
