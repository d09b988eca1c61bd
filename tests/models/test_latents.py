"""hpcgan/models/latents.py: image k of class c is z(seed, c, k) alone (not the batch size, N, the
other classes or the order asked in); evaluation image i has class i % C and is image i // C of it;
an unconditional generator gets no labels; the uint8 mapping inverts the loader's scaling."""

import numpy as np
import pytest
import torch
from torch import nn

from hpcgan.models.latents import (
    LatentSampler,
    evaluation_layout,
    generator_classes,
    latent_seed,
    latents,
    to_uint8,
)


class Recorder(nn.Module):
    """A 'generator' whose image shows its latent and label: pixel (0, j) = z[j] / 8, pixel (1, 0) the
    label / 8 (-1 when no labels were passed), so a test can read back what it was given."""

    def __init__(self, num_classes: int, z_dim: int = 6) -> None:
        super().__init__()
        self.num_classes, self.z_dim = num_classes, z_dim
        self.calls: list[int] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append(len(z))
        out = torch.zeros(len(z), 1, 2, self.z_dim)
        out[:, 0, 0] = (z / 8).clamp(-1, 1)
        out[:, 0, 1, 0] = -1.0 if labels is None else labels.float() / 8
        return out


def test_a_latent_is_a_function_of_seed_class_and_index_only():
    z = latents(0, torch.tensor([1, 0, 1]), torch.tensor([5, 5, 7]), 16)
    assert z.shape == (3, 16) and z.dtype == torch.float32
    alone = latents(0, torch.tensor([1]), torch.tensor([5]), 16)
    assert torch.equal(z[0], alone[0])  # its neighbours in the batch do not matter
    # The documented rule, re-derived: a torch CPU generator seeded from SeedSequence([seed, class, k]).
    seed = int(np.random.SeedSequence([0, 1, 5]).generate_state(1, np.uint64)[0])
    assert latent_seed(0, 1, 5) == seed
    assert torch.equal(z[0], torch.randn(16, generator=torch.Generator().manual_seed(seed)))
    others = [latents(s, torch.tensor([c]), torch.tensor([k]), 16)[0] for s, c, k in ((1, 1, 5), (0, 0, 5), (0, 1, 6))]
    assert all(not torch.equal(z[0], other) for other in others)  # seed, class and index each change it
    with pytest.raises(ValueError, match="non-negative"):
        latent_seed(-1, 0, 0)


def test_evaluation_layout_cycles_the_classes():
    labels, ks = evaluation_layout(torch.arange(7), 3)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2, 0] and ks.tolist() == [0, 0, 0, 1, 1, 1, 2]
    labels, ks = evaluation_layout(torch.arange(4), 1)
    assert labels.tolist() == [0] * 4 and ks.tolist() == [0, 1, 2, 3]


def test_images_do_not_depend_on_batch_size_n_or_order():
    g = Recorder(num_classes=3)
    sampler = LatentSampler(g, g.z_dim, 3, seed=4)
    whole = sampler.at(torch.arange(12))
    assert whole.shape == (12, 1, 2, g.z_dim) and whole.dtype == torch.uint8
    in_blocks = torch.cat([sampler.at(block) for block in torch.arange(12).split(5)])
    assert torch.equal(whole, in_blocks)  # other batch sizes (and so other ranks' blocks)
    assert torch.equal(whole[:7], sampler.at(torch.arange(7)))  # a smaller N: its first images are the same
    shuffled = torch.tensor([11, 3, 0, 7])
    assert torch.equal(sampler.at(shuffled), whole[shuffled])
    # Evaluation image i is image i // 3 of class i % 3: what an export of that class draws.
    for c in range(3):
        assert torch.equal(sampler.of_class(c, torch.arange(4)), whole[c::3])
    # Each image shows its class (label / 8 -> uint8) and the latent of (seed, class, k).
    assert whole[:, 0, 1, 0].tolist() == to_uint8(torch.arange(12) % 3 / 8).tolist()
    z = latents(4, torch.tensor([2]), torch.tensor([3]), g.z_dim)
    assert torch.equal(whole[11, 0, 0], to_uint8(z[0] / 8))
    assert g.calls == [12, 5, 5, 2, 7, 4, 4, 4, 4]  # one generator call per request


def test_an_unconditional_generator_gets_no_labels_and_one_class():
    g = Recorder(num_classes=0)
    sampler = LatentSampler(g, g.z_dim, generator_classes(g, num_classes=2))  # two classes in the data
    assert sampler.classes == 1
    images = sampler.at(torch.arange(5))
    assert images[:, 0, 1, 0].tolist() == [0] * 5  # -1 -> uint8 0: labels were None
    assert torch.equal(images, sampler.of_class(0, torch.arange(5)))  # image i is image i of the one class
    assert generator_classes(Recorder(num_classes=2), 2) == 2
    assert generator_classes(nn.Identity(), 2) == 2  # a module that does not say: the data's classes


def test_uint8_mapping_inverts_the_loader_scaling():
    pixels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(pixels.float() / 127.5 - 1), pixels)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
