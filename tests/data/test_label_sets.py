"""Label sets: names, multi-hot vectors, parsing of --labels, and the draws training and evaluation use."""

import pytest
import torch

from hpcgan.data.label_sets import (
    NO_FINDING,
    LabelSets,
    decode_hot,
    encode_hot,
    hot_of,
    hot_to_masks,
    masks_to_hot,
    set_name,
)
from hpcgan.errors import UserError

CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Pneumothorax", NO_FINDING)
SETS = LabelSets(CLASSES, {NO_FINDING: 600, "Effusion": 200, "Cardiomegaly|Effusion": 150, "Atelectasis": 45,
                           "Pneumothorax": 5})  # fmt: skip


def test_names_follow_class_order_and_the_empty_set_is_no_finding():
    assert set_name(["Effusion", "Cardiomegaly"], CLASSES) == "Cardiomegaly|Effusion"
    assert set_name([], CLASSES) == set_name([NO_FINDING], CLASSES) == NO_FINDING
    assert hot_of(["Effusion", "Cardiomegaly"], CLASSES) == [0, 1, 1, 0, 0]
    assert hot_of([], CLASSES) == [0, 0, 0, 0, 1]


def test_hot_members_round_trip_and_damaged_ones_are_refused():
    hot = hot_of(["Cardiomegaly", "Pneumothorax"], CLASSES)
    mask = decode_hot(encode_hot(hot), len(CLASSES))
    assert masks_to_hot(torch.tensor([mask]), len(CLASSES)).tolist() == [[float(v) for v in hot]]
    assert hot_to_masks(torch.tensor([hot], dtype=torch.float)).item() == mask
    for bad in (b"0101", b"010011", b"01x00", b"00000", b"11001"):  # length, chars, empty, No Finding + finding
        assert decode_hot(bad, len(CLASSES)) is None, bad


def test_parse_names_unknown_findings_and_unseen_sets():
    assert SETS.parse("Effusion|Cardiomegaly") == "Cardiomegaly|Effusion"
    with pytest.raises(UserError, match=r"--labels 'Effusion\|Oedema': unknown finding 'Oedema'; .*Atelectasis, "):
        SETS.parse("Effusion|Oedema")
    with pytest.raises(UserError, match="never occurs in the training data; pass --allow-unseen"):
        SETS.parse("Atelectasis|Pneumothorax")
    assert SETS.parse("Atelectasis|Pneumothorax", allow_unseen=True) == "Atelectasis|Pneumothorax"
    with pytest.raises(UserError, match="cannot be combined"):
        SETS.parse(f"{NO_FINDING}|Effusion")


def test_draws_follow_the_data_or_balance_the_findings():
    gen = torch.Generator().manual_seed(0)
    n = 20_000
    data = SETS.draw(n, gen, "cpu")
    balanced = SETS.draw(n, gen, "cpu", balanced=True)
    total = sum(SETS.counts.values())
    # From the data: Pneumothorax as rare as in training (5 of 1000).
    assert abs(data[:, 3].mean().item() - 5 / total) < 0.003
    # Balanced: every class equally likely to be asked for (Effusion also comes with Cardiomegaly).
    per_class = balanced.mean(dim=0)
    assert abs(per_class[3].item() - 0.2) < 0.015 and abs(per_class[0].item() - 0.2) < 0.015
    assert per_class[2].item() > 0.2  # Effusion: its own draws plus those through Cardiomegaly
    assert ((balanced.sum(dim=1) >= 1) & (balanced[:, 4] + balanced[:, :4].amax(dim=1) == 1)).all()


def test_evaluation_sets_depend_on_the_index_only_and_follow_the_distribution():
    first = SETS.evaluation_names(range(5000))
    assert SETS.evaluation_names([4999, 17]) == [first[4999], first[17]]
    share = first.count("Cardiomegaly|Effusion") / len(first)
    assert abs(share - 150 / 1000) < 0.01
    with_effusion = SETS.evaluation_names(range(100), containing="Effusion")
    assert set(with_effusion) == {"Effusion", "Cardiomegaly|Effusion"}
