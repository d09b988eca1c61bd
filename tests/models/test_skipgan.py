"""hpcgan/models/skipgan.py: the skip-connection generator: shapes, tanh range, conditioning, and the
final image as the upsampled sum of every resolution's to-image output."""

import torch
import torch.nn.functional as F

from hpcgan.models.skipgan import SkipGenerator


def test_shape_and_tanh_range():
    torch.manual_seed(0)
    g = SkipGenerator(32, z_dim=8, width=2, max_width=8)
    images = g(torch.randn(3, 8) * 10)
    assert images.shape == (3, 1, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


def test_one_block_per_doubling_with_widths_falling_from_the_cap():
    g = SkipGenerator(32, z_dim=8, width=2, max_width=8)  # 4 px: 2 * 8 = 16 capped to 8; then 8, 4, 2
    assert [b.to_image.in_channels for b in g.blocks] == [8, 4, 2]
    assert g.seed_width == 8


def test_conditional_label_changes_the_image_and_eval_is_deterministic():
    torch.manual_seed(0)
    g = SkipGenerator(32, z_dim=8, width=2, num_classes=3, max_width=8).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        a, b = g(z, torch.tensor([0, 0])), g(z, torch.tensor([1, 1]))
        assert not torch.allclose(a, b)
        assert torch.equal(a, g(z, torch.tensor([0, 0])))


def test_image_is_tanh_of_the_upsampled_sum_of_the_skip_outputs():
    torch.manual_seed(0)
    g = SkipGenerator(32, z_dim=8, width=2, max_width=8).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        h = g.project(z).view(2, g.seed_width, 4, 4)
        outputs = []
        for block in g.blocks:
            h, out = block(h)
            outputs.append(out)  # 8, 16, 32 px
        expected = torch.tanh(F.interpolate(F.interpolate(outputs[0], scale_factor=2, mode="bilinear") + outputs[1],
                                            scale_factor=2, mode="bilinear") + outputs[2])  # fmt: skip
        assert [o.shape[-1] for o in outputs] == [8, 16, 32]
        assert torch.allclose(g(z), expected, atol=1e-6)
