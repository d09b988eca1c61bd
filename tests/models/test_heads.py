"""hpcgan/models/heads.py: the real/fake logit, the projection term <embed(y), h> and the auxiliary
classifier, each against a computation from the head's own layers."""

import pytest
import torch
from torch import nn
from torch.nn.utils import spectral_norm

from hpcgan.models.heads import CONDITIONALS, DiscriminatorHeads


def identity(m: nn.Module) -> nn.Module:
    return m


def test_unconditional_head_is_one_linear_logit_per_sample():
    torch.manual_seed(0)
    heads = DiscriminatorHeads(6, 3, "none", identity)
    h = torch.randn(4, 6)
    logit, extra = heads(h, None)
    assert logit.shape == (4,) and extra is None
    assert torch.allclose(logit, h @ heads.logit.weight[0] + heads.logit.bias[0])
    assert heads.project is None and heads.classify is None


def test_projection_adds_the_dot_product_of_the_class_embedding_with_the_features():
    torch.manual_seed(0)
    heads = DiscriminatorHeads(6, 3, "projection", identity)
    h, labels = torch.randn(4, 6), torch.tensor([0, 2, 1, 2])
    logit, extra = heads(h, labels)
    plain = h @ heads.logit.weight[0] + heads.logit.bias[0]
    expected = plain + torch.stack([heads.project.weight[y] @ h[i] for i, y in enumerate(labels.tolist())])
    assert extra is None
    assert torch.allclose(logit, expected, atol=1e-6)


def test_projection_logit_depends_on_the_label():
    torch.manual_seed(0)
    heads = DiscriminatorHeads(6, 3, "projection", identity)
    h = torch.randn(4, 6)
    a, _ = heads(h, torch.zeros(4, dtype=torch.long))
    b, _ = heads(h, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_aux_head_returns_class_logits_and_an_unconditional_logit():
    torch.manual_seed(0)
    heads = DiscriminatorHeads(6, 3, "aux", identity)
    h = torch.randn(4, 6)
    logit, classes = heads(h, torch.tensor([0, 1, 2, 0]))
    assert classes.shape == (4, 3)
    assert torch.allclose(classes, h @ heads.classify.weight.T + heads.classify.bias, atol=1e-6)
    assert torch.equal(logit, heads(h, torch.tensor([2, 2, 2, 2]))[0])  # labels do not enter the logit


def test_wrap_is_applied_to_every_layer():
    heads = DiscriminatorHeads(6, 3, "projection", spectral_norm)
    names = {n for n, _ in heads.named_parameters()}
    assert {"logit.weight_orig", "project.weight_orig"} <= names


def test_the_documented_conditionals_are_accepted_and_others_refused():
    assert CONDITIONALS == ("none", "projection", "aux")
    for conditional in CONDITIONALS:
        DiscriminatorHeads(4, 2, conditional, identity)
    with pytest.raises(ValueError, match="acgan"):
        DiscriminatorHeads(4, 2, "acgan", identity)
