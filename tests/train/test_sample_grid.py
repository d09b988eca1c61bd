"""hpcgan/train/sample_grid.py: the sampling cadence, the fixed latents and labels, the PNG a grid
becomes (pixel by pixel, against save_grid's rule), a grid that cannot be written, and G's mode."""

import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hpcgan.runs.layout import RunPaths
from hpcgan.train.sample_grid import SAMPLE_GRID, SampleGrids, save_grid

CPU = torch.device("cpu")


class ConstantPerLabel(nn.Module):
    """Image of label k: every pixel (k / 2) - 1, i.e. -1, -0.5, 0, 0.5 for labels 0..3; records its mode."""

    def __init__(self, size=3):
        super().__init__()
        self.size = size
        self.modes_seen = []
        self.z_seen = []

    def forward(self, z, labels):
        self.modes_seen.append(self.training)
        self.z_seen.append(z.clone())
        values = labels.float() / 2 - 1
        return values.view(-1, 1, 1, 1).expand(-1, 1, self.size, self.size).clone()


def _grids(tmp_path, every=100, z_dim=8, num_classes=4, seed=0, enabled=True):
    return SampleGrids(tmp_path, every, z_dim, num_classes, seed, enabled)


def test_samples_every_n_steps(tmp_path):
    grids = _grids(tmp_path, every=50)
    assert [s for s in range(1, 201) if grids.should_sample(s)] == [50, 100, 150, 200]


def test_every_zero_never_samples_on_a_cadence(tmp_path):
    grids = _grids(tmp_path, every=0)
    assert not any(grids.should_sample(s) for s in range(0, 1001))


def test_the_fixed_latents_are_the_same_for_the_same_seed(tmp_path):
    a, b = _grids(tmp_path, seed=7), _grids(tmp_path, seed=7)
    assert a.z.shape == (SAMPLE_GRID, 8)
    assert torch.equal(a.z, b.z)


def test_the_fixed_latents_differ_for_another_seed(tmp_path):
    assert not torch.allclose(_grids(tmp_path, seed=7).z, _grids(tmp_path, seed=8).z)


def test_the_fixed_latents_do_not_touch_the_global_rng(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _grids(tmp_path, seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("num_classes", [1, 2, 4, 8])
def test_labels_cycle_through_the_classes(tmp_path, num_classes):
    labels = _grids(tmp_path, num_classes=num_classes).labels
    assert labels.tolist() == [i % num_classes for i in range(SAMPLE_GRID)]


def test_an_unconditional_run_draws_label_zero_only(tmp_path):
    assert _grids(tmp_path, num_classes=0).labels.tolist() == [0] * SAMPLE_GRID


def test_every_class_is_drawn_with_three_classes(tmp_path):
    assert set(_grids(tmp_path, num_classes=3).labels.tolist()) == {0, 1, 2}


def _classes_per_column(labels):
    cols = math.ceil(math.sqrt(SAMPLE_GRID))  # save_grid's columns
    grid = labels.view(-1, cols)
    return [set(grid[:, c].tolist()) for c in range(cols)]


def test_with_four_classes_each_column_of_the_grid_holds_one_class(tmp_path):
    columns = _classes_per_column(_grids(tmp_path, num_classes=4).labels)
    assert columns == [{c % 4} for c in range(8)]


def test_with_three_classes_each_column_of_the_grid_holds_one_class(tmp_path):
    columns = _classes_per_column(_grids(tmp_path, num_classes=3).labels)
    assert all(len(classes) == 1 for classes in columns)


def _expected_grid(images):
    """save_grid's rule, written out: ceil(sqrt(n)) columns, each cell (h + 2) x (w + 2) with a 1-px
    black border, pixel = round((x + 1) * 127.5) of x clamped to [-1, 1]."""
    n, _, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + 2), cols * (w + 2)), np.uint8)
    for i in range(n):
        r, c = i // cols, i % cols
        for y in range(h):
            for x in range(w):
                v = min(max(float(images[i, 0, y, x]), -1.0), 1.0)
                grid[r * (h + 2) + 1 + y, c * (w + 2) + 1 + x] = int(np.floor((v + 1) * 127.5 + 0.5))
    return grid


def test_save_writes_the_step_png_with_save_grids_layout(tmp_path):
    grids, g = _grids(tmp_path, num_classes=4), ConstantPerLabel(size=3)
    grids.save(g, 120, CPU)
    path = tmp_path / "samples" / "step-000120.png"
    assert path == RunPaths(tmp_path).sample_grid(120) and path.is_file()
    png = np.asarray(Image.open(path))
    assert png.shape == (8 * 5, 8 * 5) and png.dtype == np.uint8  # 64 images of 3x3: 8 x 8 cells of 5x5
    # column c holds label c % 4: pixels 0, 64 (63.75 rounds up), 128 (127.5 rounds half to even), 191
    assert png[1, 1] == 0 and png[1, 6] == 64 and png[1, 11] == 128 and png[1, 16] == 191
    assert png[0, :].max() == 0 and png[:, 0].max() == 0 and png[4, :].max() == 0  # the borders
    labels = torch.arange(SAMPLE_GRID) % 4
    assert np.array_equal(png, _expected_grid(labels.float().view(-1, 1, 1, 1).expand(-1, 1, 3, 3) / 2 - 1))


def test_a_grid_of_a_non_square_count_leaves_the_last_cells_black(tmp_path):
    images = torch.tensor([-1.0, 1.0, 0.0, 2.0, -3.0]).view(5, 1, 1, 1).expand(5, 1, 2, 2)  # 2.0, -3.0 clamp
    path = tmp_path / "grid.png"
    save_grid(images, path)
    png = np.asarray(Image.open(path))
    assert png.shape == (2 * 4, 3 * 4)  # 3 columns, 2 rows of 4x4 cells
    assert np.array_equal(png, _expected_grid(images))
    assert png[5:7, 9:11].max() == 0  # the sixth cell is empty


def test_save_draws_the_fixed_latents_with_the_cycled_labels(tmp_path):
    grids, g = _grids(tmp_path), ConstantPerLabel()
    grids.save(g, 1, CPU)
    grids.save(g, 2, CPU)
    assert torch.equal(g.z_seen[0], grids.z) and torch.equal(g.z_seen[1], grids.z)


def test_a_disabled_grid_writes_nothing_and_does_not_call_g(tmp_path):
    grids, g = _grids(tmp_path, enabled=False), ConstantPerLabel()
    grids.save(g, 100, CPU)
    assert list(tmp_path.iterdir()) == [] and g.modes_seen == []


def test_a_samples_path_that_is_a_file_gives_a_warning_not_an_exception(tmp_path):
    (tmp_path / "samples").write_text("not a folder")
    grids = _grids(tmp_path)
    with pytest.warns(UserWarning, match="sample grid not written"):
        grids.save(ConstantPerLabel(), 100, CPU)
    assert (tmp_path / "samples").read_text() == "not a folder"


@pytest.mark.parametrize("training", [True, False])
def test_g_draws_in_eval_mode_and_gets_its_mode_back(tmp_path, training):
    g = ConstantPerLabel().train(training)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _grids(tmp_path).save(g, 100, CPU)
    assert g.modes_seen == [False]
    assert g.training is training
