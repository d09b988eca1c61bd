"""LabelEmbedding: a class index looks up its row, a label set (multi-hot) sums its rows / sqrt(size)."""

import torch
import torch.nn.functional as F

from hpcgan.models.build import ModelSpec, build_networks
from hpcgan.models.label_embedding import LabelEmbedding


def test_one_hot_equals_the_lookup_and_a_set_is_the_scaled_sum():
    torch.manual_seed(0)
    emb = LabelEmbedding(4, 6)
    labels = torch.tensor([0, 3, 2])
    assert torch.allclose(emb(F.one_hot(labels, 4).float()), emb(labels))
    both = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert torch.allclose(emb(both)[0], (emb.weight[0] + emb.weight[2]) / 2**0.5)


def test_state_dict_keys_are_nn_embeddings():
    """Checkpoints of runs from before label sets load unchanged."""
    assert list(LabelEmbedding(3, 5).state_dict()) == list(torch.nn.Embedding(3, 5).state_dict())


def test_every_conditional_family_takes_label_sets_and_they_change_the_output():
    hot = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    for arch, conditional, d_arch in (("dcgan", "projection", "auto"), ("dcgan", "aux", "auto"),
                                      ("r3gan", "projection", "auto"), ("skipgan", "projection", "auto")):  # fmt: skip
        torch.manual_seed(0)
        spec = ModelSpec(arch, 32, 16, 8, 8, conditional=conditional, num_classes=4, d_arch=d_arch)
        g, d = build_networks(spec)
        g.eval()
        z = torch.randn(1, 16).repeat(2, 1)
        images = g(z, hot)
        assert images.shape == (2, 1, 32, 32)
        assert not torch.allclose(images[0], images[1]), f"{arch}: G ignores the label set"
        logits, class_logits = d(images.detach(), hot)
        assert logits.shape == (2,)
        if conditional == "aux":
            assert class_logits.shape == (2, 4)
        else:  # the projection term depends on the set
            same_image = images[:1].detach().repeat(2, 1, 1, 1)
            scores, _ = d(same_image, hot)
            assert not torch.isclose(scores[0], scores[1]), f"{arch}: D's projection ignores the label set"
