"""The FID InceptionV3 extractor: the same features and logits as torch-fidelity's reference port
on the same (random) weights, its TF1 bilinear resize bit-identical to torch-fidelity's, the weights
lookup (argument, env variable, torch hub cache) and its one-line errors, the `xrv` error when
torchxrayvision is absent.

The real weights (95 MB, from GitHub) are not needed: a random state dict in pytorch-fid's key
layout exercises every layer the same way."""

from __future__ import annotations

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
import torch

from hpcgan.errors import UserError
from hpcgan.eval.extractors import EXTRACTORS, build_extractor
from hpcgan.eval.inception import WEIGHTS_FILE, WEIGHTS_URL, FIDInceptionV3, find_weights, resize_like_tf1
from tests.conftest import REPO

FIDELITY_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


# torch-fidelity sits outside the venv's site-packages: installed there, it makes torchmetrics
# import it on `import torchmetrics`, and its __init__ imports torchvision, which can't be installed
# beside our torch build. .ci/run: pip install --no-deps --target .reference torch-fidelity==0.4.0
REFERENCE = Path(os.environ.get("HPCGAN_REFERENCE_PACKAGES", REPO / ".reference"))


@pytest.fixture(scope="module")
def fidelity():
    """torch-fidelity 0.4.0's InceptionV3 and resize modules, imported under an empty stand-in
    package whose path is the real package's folder, so its __init__ never runs; the two modules
    need only torch."""
    folder = REFERENCE / "torch_fidelity"
    if not (folder / "feature_extractor_inceptionv3.py").is_file():
        if os.environ.get("HPCGAN_REQUIRE_REFERENCE"):
            pytest.fail(f"torch-fidelity missing at {folder} (HPCGAN_REQUIRE_REFERENCE is set)")
        pytest.skip(f"torch-fidelity not at {folder} (pip install --no-deps --target .reference torch-fidelity==0.4.0)")
    saved = {k: v for k, v in sys.modules.items() if k == "torch_fidelity" or k.startswith("torch_fidelity.")}
    stub = types.ModuleType("torch_fidelity")
    stub.__path__ = [str(folder)]
    sys.modules["torch_fidelity"] = stub
    try:
        yield types.SimpleNamespace(
            inception=importlib.import_module("torch_fidelity.feature_extractor_inceptionv3"),
            resize=importlib.import_module("torch_fidelity.interpolate_compat_tensorflow"),
        )
    finally:
        for k in [k for k in sys.modules if k == "torch_fidelity" or k.startswith("torch_fidelity.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def random_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """pytorch-fid's key layout with random values scaled so activations stay O(1) through all ~95
    layers (He-normal convs; BatchNorm with random affine and running statistics, positive variances)."""
    model = FIDInceptionV3()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * (2 / mod.weight[0].numel()) ** 0.5)
            elif isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                mod.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        model.fc.weight.copy_(torch.randn(model.fc.weight.shape, generator=gen) / 2048**0.5)
        model.fc.bias.copy_(torch.randn(1008, generator=gen))
    return model.state_dict()


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_FILE
    torch.save(random_state_dict(0), path)
    return path


@pytest.fixture(scope="module")
def ours_and_reference(weights, fidelity):
    ours, _ = build_extractor("inception", weights=weights)
    reference = fidelity.inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"], feature_extractor_weights_path=str(weights)
    )
    return ours, reference


@pytest.fixture
def no_weights(tmp_path, monkeypatch) -> Path:
    """An empty torch hub cache and no env variable; returns the hub's checkpoints directory."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HPCGAN_INCEPTION_WEIGHTS", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def one_line_error(fn, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert str(fragment) in message, (fragment, message)
    return message


@pytest.mark.parametrize("side", [32, 64, 512])
def test_resize_is_torch_fidelity_tf1_bilinear(fidelity, side):
    x = torch.randint(0, 256, (2, 3, side, side), generator=torch.Generator().manual_seed(side)).float()
    expected = fidelity.resize.interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(resize_like_tf1(x, 299), expected)


@pytest.mark.parametrize("side", [64, 512])
def test_features_and_logits_match_torch_fidelity(ours_and_reference, side):
    """Both run the same float32 operations in the same order, so on CPU they agree bit for bit today;
    rtol/atol 1e-4 (features and logits are O(1)) leaves room only for oneDNN choosing another
    convolution algorithm (another summation order: ~1e-7 relative per layer), not for a wrong layer,
    which moves them by O(0.1)."""
    ours, reference = ours_and_reference
    grey = torch.randint(0, 256, (2, 1, side, side), generator=torch.Generator().manual_seed(side), dtype=torch.uint8)
    with torch.no_grad():
        features, logits = ours.features_and_logits(grey)
        ref_features, ref_logits_unbiased, ref_logits = reference(grey.repeat(1, 3, 1, 1))
    assert features.shape == (2, ours.num_features) == (2, 2048) and features.dtype == torch.float32
    assert logits.shape == (2, 1008)
    assert features.std() > 0.1 and logits.std() > 0.1  # the random weights didn't collapse the activations
    torch.testing.assert_close(features, ref_features, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(logits, ref_logits_unbiased, rtol=1e-4, atol=1e-4)  # the IS logits: no bias
    torch.testing.assert_close(ours.logits_from_features(features, bias=True), ref_logits, rtol=1e-4, atol=1e-4)
    if side == 64:  # three equal channels are the same image as one
        with torch.no_grad():
            torch.testing.assert_close(ours(grey.repeat(1, 3, 1, 1)), features, rtol=0, atol=0)


def test_weights_lookup_order_and_identity(weights, no_weights, tmp_path, monkeypatch):
    assert "inception" in EXTRACTORS
    no_weights.mkdir(parents=True)
    (no_weights / FIDELITY_WEIGHTS_FILE).write_bytes(weights.read_bytes())
    assert find_weights() == no_weights / FIDELITY_WEIGHTS_FILE  # torch-fidelity's file name is accepted
    (no_weights / WEIGHTS_FILE).write_bytes(weights.read_bytes())
    assert find_weights() == no_weights / WEIGHTS_FILE  # pytorch-fid's name first

    model, identity = build_extractor("inception")
    assert identity.startswith("inception-2015-12-05-") and len(identity) == len("inception-2015-12-05-") + 12
    assert model.num_features == 2048

    other = tmp_path / "other.pth"
    state = random_state_dict(0)
    state["fc.bias"][0] += 1  # one changed number: another file, another identity
    torch.save(state, other)
    monkeypatch.setenv("HPCGAN_INCEPTION_WEIGHTS", str(other))
    assert find_weights() == other  # the env variable before the hub cache
    assert find_weights(weights) == weights  # the argument before both
    _, other_identity = build_extractor("inception")
    assert other_identity != identity and other_identity.startswith("inception-2015-12-05-")
    assert build_extractor("inception", weights=weights)[1] == identity  # same bytes, same identity


def test_missing_weights_say_where_to_put_them(no_weights, tmp_path, monkeypatch):
    one_line_error(lambda: build_extractor("inception"), "--inception-weights", "HPCGAN_INCEPTION_WEIGHTS",
                   no_weights / WEIGHTS_FILE, WEIGHTS_URL, "offline")  # fmt: skip
    missing = tmp_path / "nowhere.pth"
    one_line_error(lambda: build_extractor("inception", weights=missing), "--inception-weights", missing, WEIGHTS_URL)
    monkeypatch.setenv("HPCGAN_INCEPTION_WEIGHTS", str(missing))
    one_line_error(lambda: build_extractor("inception"), "HPCGAN_INCEPTION_WEIGHTS", missing, WEIGHTS_URL)


def test_wrong_files_name_the_file(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file\n" * 10)
    one_line_error(lambda: build_extractor("inception", weights=garbage), garbage, WEIGHTS_FILE)

    imagenet_like = tmp_path / "imagenet.pth"  # e.g. torchvision's ImageNet Inception3: 1000 classes
    state = FIDInceptionV3().state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    torch.save(state, imagenet_like)
    one_line_error(lambda: build_extractor("inception", weights=imagenet_like), imagenet_like, "fc.weight", "1008")

    partial = tmp_path / "partial.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3), "AuxLogits.fc.weight": torch.zeros(1)}, partial)
    one_line_error(lambda: build_extractor("inception", weights=partial), partial, "missing", "more")

    not_a_dict = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), not_a_dict)
    one_line_error(lambda: build_extractor("inception", weights=not_a_dict), not_a_dict, "state dict")


def test_xrv_errors(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchxrayvision", None)  # absent, even where it is installed
    one_line_error(lambda: build_extractor("xrv"), "pip install 'hpcgan[xrv]'")

    monkeypatch.setitem(sys.modules, "torchxrayvision", types.ModuleType("torchxrayvision"))  # present, no weights
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HPCGAN_XRV_WEIGHTS", str(tmp_path / "nowhere.pt"))
    one_line_error(lambda: build_extractor("xrv"), tmp_path / "nowhere.pt", "HPCGAN_XRV_WEIGHTS", "github.com")
