"""Phantoms with findings: each finding changes the image where a radiologist would look for it
(against the same seed and index without it), the label sets follow the prevalences, and
`hpcgan phantom --findings` writes a deterministic multi-label shard set."""

import itertools
import json
from collections import Counter

import numpy as np
import pytest
import webdataset as wds
from PIL import Image, ImageDraw

from hpcgan.data.formats import decode
from hpcgan.data.index import ShardSet
from hpcgan.data.label_sets import NO_FINDING, hot_of
from hpcgan.data.phantom_findings import (
    FINDINGS,
    FINDINGS_CLASSES,
    PREVALENCE,
    draw_findings,
    render_findings_phantom,
)
from tests.conftest import REPO, file_digests, run_cli

SIZE = 64
INDICES = range(24)


def _pair(i: int, finding: str) -> tuple[np.ndarray, np.ndarray]:
    """(without, with) the finding: the same seed and index, as floats."""
    return (render_findings_phantom(0, i, (), SIZE).astype(float),
            render_findings_phantom(0, i, (finding,), SIZE).astype(float))  # fmt: skip


def _threshold(img: np.ndarray) -> float:
    """Halfway between lung (dark) and the soft tissue under the diaphragm."""
    return (np.percentile(img[16:40, 6:58], 10) + np.median(img[56:62, 16:48])) / 2


def _lung_run(row: np.ndarray, threshold: float, side: int) -> list[int]:
    """The lung's columns on one side of a row, medial to lateral: the first dark run out from the
    midline (the air outside the body lies beyond the chest wall, after a bright gap)."""
    run: list[int] = []
    for c in range(SIZE // 2 - 1, -1, -1) if side < 0 else range(SIZE // 2, SIZE):
        if row[c] < threshold:
            run.append(c)
        elif run:
            break
    return run


def _high_pass(img: np.ndarray) -> np.ndarray:
    out = np.zeros_like(img)
    out[1:-1, 1:-1] = img[1:-1, 1:-1] - (img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:]) / 4
    return out


def _eroded(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def test_classes_and_prevalences_of_independent_draws():
    assert FINDINGS_CLASSES == ["opacity", "cardiomegaly", "effusion", "pneumothorax", NO_FINDING]
    drawn = [draw_findings(0, i) for i in range(2000)]
    assert drawn[:50] == [draw_findings(0, i) for i in range(50)], "a pure function of (seed, index)"
    assert drawn[:50] != [draw_findings(1, i) for i in range(50)]
    rate = {f: np.mean([f in d for d in drawn]) for f in FINDINGS}
    for finding, p in PREVALENCE.items():
        assert abs(rate[finding] - p) < 0.03, (finding, rate[finding], p)
    for a, b in itertools.combinations(FINDINGS, 2):  # independent: pairs at the product of prevalences
        both = np.mean([a in d and b in d for d in drawn])
        assert abs(both - PREVALENCE[a] * PREVALENCE[b]) < 0.02, (a, b, both)
    assert abs(np.mean([not d for d in drawn]) - np.prod([1 - p for p in PREVALENCE.values()])) < 0.03
    triple = sum({"pneumothorax", "effusion", "cardiomegaly"} <= set(d) for d in drawn)
    assert 0 < triple < 30, "combinations like pneumothorax+effusion+cardiomegaly occur, rarely"


def test_a_phantom_is_a_pure_function_of_seed_index_findings_and_size():
    a = render_findings_phantom(3, 5, ("effusion", "opacity"), SIZE)
    assert np.array_equal(a, render_findings_phantom(3, 5, ("opacity", "effusion"), SIZE))
    assert not np.array_equal(a, render_findings_phantom(3, 5, ("opacity",), SIZE))
    assert not np.array_equal(a, render_findings_phantom(4, 5, ("effusion", "opacity"), SIZE))
    assert render_findings_phantom(3, 5, (), 32).shape == (32, 32)
    with pytest.raises(ValueError, match="unknown findings"):
        render_findings_phantom(3, 5, ("Effusion",), SIZE)


def test_opacity_brightens_one_lung():
    gains = []
    for i in INDICES:
        without, with_ = _pair(i, "opacity")
        halves = (slice(4, SIZE // 2), slice(SIZE // 2, SIZE - 4))
        gains.append(max(with_[14:46, h].mean() - without[14:46, h].mean() for h in halves))
    assert min(gains) > 1 and np.mean(gains) > 5, np.round(gains, 1)


def test_cardiomegaly_widens_the_heart_shadow():
    """Along rows through the heart, the bright span from the midline (mediastinum and heart)
    widens, and so does its ratio to the chest's width between the lungs' outer edges."""

    def heart_span_and_ratio(img, threshold):
        band = img[36:46].mean(axis=0)
        bright = band >= threshold
        lo = hi = SIZE // 2
        while lo > 0 and bright[lo - 1]:
            lo -= 1
        while hi < SIZE - 1 and bright[hi + 1]:
            hi += 1
        lungs = [c for side in (-1, 1) for c in _lung_run(band, threshold, side)]
        return hi - lo + 1, (hi - lo + 1) / (max(lungs) - min(lungs) + 1)

    wider, ratios = [], []
    for i in INDICES:
        without, with_ = _pair(i, "cardiomegaly")
        threshold = _threshold(without)
        span0, ratio0 = heart_span_and_ratio(without, threshold)
        span1, ratio1 = heart_span_and_ratio(with_, threshold)
        wider.append(span1 - span0)
        ratios.append((ratio0, ratio1))
    ratios = np.array(ratios)
    assert min(wider) >= 5 and np.mean(wider) >= 10, wider
    assert ratios[:, 1].mean() > ratios[:, 0].mean() + 0.15, ratios.mean(axis=0)


def test_effusion_fills_the_costophrenic_angle_with_a_meniscus():
    """The lower lateral lung brightens to fluid density, and the fluid's upper edge is higher at
    the chest wall than towards the midline (a meniscus, concave upwards)."""
    gains, rises = [], []
    for i in INDICES:
        without, with_ = _pair(i, "effusion")
        diff = with_ - without
        zones = {-1: diff[36:50, 8:20].mean(), 1: diff[36:50, 44:56].mean()}
        side = max(zones, key=zones.get)
        gains.append(zones[side])
        run = _lung_run(without[36], _threshold(without), side)
        tops = []
        for where in (0.25, 0.85):  # medial .. lateral within the lung
            column = diff[20:60, run[int(where * (len(run) - 1))]] > 10
            tops.append(20 + np.flatnonzero(column)[0] if column.any() else 60)
        rises.append(tops[0] - tops[1])  # rows the fluid climbs towards the chest wall
    assert min(gains) > 10 and np.mean(gains) > 20, np.round(gains, 1)
    assert min(rises) >= 0 and np.mean(rises) >= 3 and np.mean(np.array(rises) > 0) > 0.8, rises


def test_pneumothorax_darkens_the_lung_periphery_and_erases_its_markings():
    """At the lateral edge of one lung the image darkens, and where it does (the air beyond the
    lung edge) there is less fine texture than the lung markings gave the same place before."""
    drops, textures = [], []
    for i in INDICES:
        without, with_ = _pair(i, "pneumothorax")
        threshold = _threshold(without)
        side_drops = []
        for side in (-1, 1):
            periphery = np.zeros_like(without, dtype=bool)
            for r in range(10, 40):
                run = _lung_run(without[r], threshold, side)
                if len(run) >= 8:
                    periphery[r, run[-4:]] = True  # the lung's outer 4 px on this row
            side_drops.append(with_[periphery].mean() - without[periphery].mean())
        drops.append(min(side_drops))
        gap = _eroded(with_ - without < -12)  # the air beyond the pleural line, away from its edges
        textures.append(_high_pass(with_)[gap].std() / _high_pass(without)[gap].std())
    assert max(drops) < -8 and np.mean(drops) < -15, np.round(drops, 1)
    assert max(textures) < 1.0 and np.mean(textures) < 0.93, np.round(textures, 2)


def test_cli_writes_multi_label_shards_with_hot_members(tmp_path):
    args = ["--findings", "--n", "120", "--size", "32", "--shard-size", "50", "--val-fraction", "0.1"]
    run_cli("phantom", tmp_path / "a", *args, "--workers", "2")
    run_cli("phantom", tmp_path / "b", *args, "--workers", "1")
    assert file_digests(tmp_path / "a") == file_digests(tmp_path / "b"), "byte-identical, whatever the workers"
    index = ShardSet.open(tmp_path / "a").index
    assert index["label_mode"] == "multi" and index["classes"] == FINDINGS_CLASSES
    assert index["settings"]["findings"] is True
    train = index["splits"]["train"]
    assert train["count"] == 108 and index["splits"]["val"]["count"] == 12
    assert any("|" in name for name in train["combinations"]), train["combinations"]
    seen: Counter = Counter()
    for shard in train["shards"]:
        for sample in wds.tarfile_samples(iter([{"url": str(tmp_path / "a" / shard["name"])}])):
            meta = json.loads(sample["json"])
            index_in_set = int(sample["__key__"].split("-")[1])
            assert tuple(meta["findings"]) == draw_findings(0, index_in_set)
            assert sample["hot"].decode() == "".join(map(str, hot_of(meta["findings"], FINDINGS_CLASSES)))
            pixels = decode(sample["png"], "png", 32)
            assert np.array_equal(pixels, render_findings_phantom(0, index_in_set, meta["findings"], 32))
            seen[meta["class_name"]] += 1
    assert dict(seen) == train["combinations"]
    assert train["histogram"] == {c: sum(n for name, n in seen.items() if c in name.split("|"))
                                  for c in FINDINGS_CLASSES}  # fmt: skip


def test_contact_sheet_of_findings_at_256_and_64_px():
    """tests/artifacts/phantom-findings.png, to look at: a row per finding (and a row of drawn
    combinations), three phantoms each at 256 px, then the same three at 64 px shown 4x."""
    rows = [(name, [(i, (name,)) for i in (0, 1, 2)]) for name in FINDINGS]
    combined = [(i, d) for i in range(200) if len(d := draw_findings(0, i)) >= 3][:3]
    rows = [("none", [(i, ()) for i in (0, 1, 2)]), *rows, ("drawn sets", combined)]
    tiles = []
    for name, samples in rows:
        big = [render_findings_phantom(0, i, f, 256) for i, f in samples]
        small = [np.kron(render_findings_phantom(0, i, f, 64), np.ones((4, 4), np.uint8)) for i, f in samples]
        row = Image.fromarray(np.concatenate(big + small, axis=1))
        draw = ImageDraw.Draw(row)
        for k, (_, f) in enumerate(samples * 2):
            draw.text((k * 256 + 4, 238), f"{'+'.join(f) or 'none'} ({256 if k < 3 else 64} px)", fill=255)
        draw.text((4, 4), name, fill=255)
        tiles.append(np.asarray(row))
    path = REPO / "tests" / "artifacts" / "phantom-findings.png"
    path.parent.mkdir(exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=0)).save(path)
    assert Image.open(path).size == (6 * 256, len(rows) * 256)
