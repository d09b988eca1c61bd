"""Mode collapse is measured and said: the diversity measures against their real baselines, the
verdict's thresholds, and a generator that ignores z flagged by `hpcgan eval`, `hpcgan status` and
the report page."""

import json

import torch

from hpcgan.eval.collapse import COLLAPSED, LOW, OK, diversity_verdict
from hpcgan.eval.evaluate import diversity_measures
from hpcgan.train.checkpoint import latest_valid, save_checkpoint
from tests.conftest import run_cli


def test_a_generator_like_the_data_is_as_diverse_as_the_data():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(600, 16, generator=gen), torch.randn(300, 16, generator=gen)
    m = diversity_measures(real, fake)
    assert m["diversity_n"] == 300
    assert abs(m["recall"] - m["recall_real"]) < 0.1 and abs(m["precision"] - m["precision_real"]) < 0.1
    assert m["near_duplicates"] < 0.05 and m["near_duplicates_real"] < 0.05
    assert diversity_verdict(m) == (OK, [])


def test_a_few_repeated_images_are_flagged_as_collapse():
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(600, 16, generator=gen)
    prototypes = torch.randn(2, 16, generator=gen)  # one image per class, drawn again and again
    fake = prototypes[torch.arange(300) % 2] + 0.01 * torch.randn(300, 16, generator=gen)
    m = diversity_measures(real, fake)
    assert m["recall"] < 0.05 and m["near_duplicates"] > 0.95
    verdict, reasons = diversity_verdict(m)
    assert verdict == COLLAPSED
    assert any("recall" in r for r in reasons) and any("near-duplicates" in r for r in reasons)


def test_ms_ssim_alone_decides_when_it_is_all_there_is():
    assert diversity_verdict({"ms_ssim": 0.92, "ms_ssim_real": 0.45})[0] == COLLAPSED
    assert diversity_verdict({"ms_ssim": 0.60, "ms_ssim_real": 0.45})[0] == LOW
    assert diversity_verdict({"ms_ssim": 0.50, "ms_ssim_real": 0.45})[0] == OK
    assert diversity_verdict({"ms_ssim": float("nan"), "ms_ssim_real": 0.45})[0] == OK  # not measured: no claim


def test_a_generator_that_ignores_z_is_called_collapsed_everywhere(tmp_path):
    shards = tmp_path / "shards"
    run_cli("phantom", shards, "--n", "200", "--size", "32", "--shard-size", "50", "--workers", "2")
    run_dir = tmp_path / "runs" / "r3"
    run_cli("train", "--gan", "r3gan64", "--data", shards, "--run-dir", run_dir, "model.resolution=32",
            "model.g_width=4", "model.d_width=4", "model.max_width=16", "model.blocks=1",
            "model.conditional=projection", "train.batch_size=8", "train.steps=2", "train.num_workers=0",
            "train.sample_every=0", threads=1)  # fmt: skip
    path, state = latest_valid(run_dir)
    z_dim = state["config"]["model"]["z_dim"]
    for which in ("g", "ema"):  # z's columns of the basis map zeroed: every image of a class is the same
        state[which]["to_basis.weight"][:, :z_dim] = 0
    save_checkpoint(run_dir, state["step"] + 1, state, keep=3)

    proc = run_cli("eval", run_dir, "--n", "128", "--diversity-pairs", "16", threads=1)
    assert "MODE COLLAPSE" in proc.stdout + proc.stderr
    result = json.loads((run_dir / "eval.jsonl").read_text().splitlines()[-1])
    assert result["diversity"] == COLLAPSED and result["near_duplicates"] > 0.9
    assert result["ms_ssim"] > 0.99 > result["ms_ssim_real"]

    status = run_cli("status", run_dir.parent)
    assert "MODE COLLAPSE" in status.stdout
    run_cli("report", run_dir)
    page = (run_dir / "report" / "index.html").read_text()
    assert 'class="badge collapsed"' in page and 'class="verdict collapsed"' in page
