"""The run configuration: every key described, choice keys checked in one place against the
registries they mirror, overrides typed, the hash stable, and `hpcgan config` listing it all."""

import ast
import dataclasses
import typing

import pytest

from hpcgan.cli.config_command import _shown
from hpcgan.cli.main import main
from hpcgan.errors import UserError
from hpcgan.train import config_schema as schema
from hpcgan.train.config import RunConfig, apply_overrides, check
from hpcgan.train.config_keys import check_choices, choices, walk
from hpcgan.train.presets import PRESETS, preset
from tests.conftest import REPO

SECTIONS = [RunConfig, *(type(getattr(RunConfig(), f.name)) for f in dataclasses.fields(RunConfig)
                         if dataclasses.is_dataclass(getattr(RunConfig(), f.name)))]  # fmt: skip
CHOICE_KEYS = [k for k in walk(RunConfig()) if choices(k.hint)]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.__name__)
def test_every_field_of_every_section_has_a_description(cls):
    missing = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help", "").strip()]
    assert not missing, f"{cls.__name__}: no help for {missing}"


def test_the_choice_keys_are_all_found():
    names = {k.name for k in CHOICE_KEYS}
    assert {"model.arch", "model.d_arch", "model.conditional", "model.g_conditioning", "loss.kind", "optim.name",
            "train.precision", "train.strategy", "train.offload_optimizer", "train.augment", "train.diffaugment",
            "guard.policy", "eval.extractor", "eval.split"} <= names  # fmt: skip


@pytest.mark.parametrize("k", CHOICE_KEYS, ids=lambda k: k.name)
def test_a_bad_choice_is_one_line_naming_the_key_and_the_choices(k):
    config = apply_overrides(RunConfig(), [f"{k.name}=nonsense"])
    with pytest.raises(UserError) as caught:
        check(config)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{k.name}=nonsense: expected ")
    assert all(str(choice) in message for choice in choices(k.hint))


def test_the_choice_error_reads_as_documented():
    with pytest.raises(UserError, match="^loss.kind=foo: expected one of bce, hinge, wgan, rpgan$"):
        check(apply_overrides(RunConfig(), ["loss.kind=foo"]))
    check_choices(apply_overrides(RunConfig(), ["train.augment=jpeg, brightness", "train.diffaugment="]))
    with pytest.raises(UserError, match="^train.diffaugment=jpeg: expected a comma-separated list of brightness"):
        check_choices(apply_overrides(RunConfig(), ["train.diffaugment=jpeg"]))


def test_the_literals_agree_with_the_registries_they_mirror():
    from hpcgan.data.loader import BALANCES
    from hpcgan.data.sources import SPLIT_NAMES
    from hpcgan.eval.extractors import EXTRACTORS
    from hpcgan.models.augment import POLICIES
    from hpcgan.models.build import ARCHS, D_ARCHS
    from hpcgan.models.dcgan import CONDITIONINGS
    from hpcgan.models.heads import CONDITIONALS
    from hpcgan.models.losses import LOSSES
    from hpcgan.train.fake_labels import LABEL_SAMPLINGS
    from hpcgan.train.guard import POLICIES as GUARD_POLICIES
    from hpcgan.train.live_loggers import LOGGERS
    from hpcgan.train.precision import PRECISIONS

    args = typing.get_args
    assert args(schema.Arch) == ARCHS and args(schema.DArch) == D_ARCHS
    assert args(schema.Conditional) == CONDITIONALS and args(schema.GConditioning) == CONDITIONINGS
    assert args(schema.LossKind) == LOSSES and args(schema.PrecisionName) == PRECISIONS
    assert args(schema.AugmentName) == POLICIES
    assert args(schema.DiffAugmentName) == tuple(p for p in POLICIES if p != "jpeg")  # jpeg has no gradient
    assert args(schema.GuardPolicy) == GUARD_POLICIES and args(schema.ExtractorName) == EXTRACTORS
    assert set(args(schema.EvalSplit)) <= set(SPLIT_NAMES.values())
    assert args(schema.LabelSampling) == LABEL_SAMPLINGS and args(schema.RealBalance) == BALANCES
    assert args(schema.LoggerName) == LOGGERS


def test_every_preset_passes_the_check():
    for name in PRESETS:
        check(preset(name))


def test_overrides_parse_to_the_key_types():
    c = apply_overrides(RunConfig(), ["train.steps=5", "optim.lr_g=1e-4", "train.ada=yes", "loss.kind=hinge",
                                      "train.augment=jpeg,contrast", "seed=1e1"])  # fmt: skip
    assert (c.train.steps, c.optim.lr_g, c.train.ada, c.loss.kind, c.seed) == (5, 1e-4, True, "hinge", 10)
    assert c.train.augment == "jpeg,contrast" and isinstance(c.seed, int)
    for bad, words in (("train.steps=2.9", "expected int"), ("train.ada=maybe", "expected bool"),
                       ("optim.lr_g=fast", "expected float"), ("train.stepz=3", "unknown key"),
                       ("trian.steps=3", "no section 'trian'"), ("train.steps", "expected key=value")):  # fmt: skip
        with pytest.raises(UserError, match=words):
            apply_overrides(RunConfig(), [bad])
    with pytest.raises(UserError, match="expected str"):  # a saved config.json with a number for a choice
        RunConfig.from_dict({"loss": {"kind": 3}})


def test_the_hash_is_stable_for_equal_configs():
    a, b = preset("r3gan64"), preset("r3gan64")
    assert a == b and a.hash() == b.hash()
    skipgan = preset("skipgan512")  # optim.finetune_from is a float here (see accepted_hashes below)
    assert RunConfig.from_dict(skipgan.to_dict()).hash() == skipgan.hash()
    # Pinned: runs on disk resume only while their config hashes the same.
    assert preset("dcgan64").hash() == RunConfig().hash() == "55c41eafb51fac68"
    assert a.hash() == "16365273b93df80e"
    assert apply_overrides(a, ["train.steps=5", "train.strategy=deepspeed", "eval.every=100"]).hash() == b.hash()
    assert apply_overrides(a, ["loss.kind=hinge"]).hash() != b.hash()


def test_a_config_rebuilt_from_its_saved_dict_accepts_the_hash_of_the_original_and_back():
    # optim.finetune_from defaults to the int 0 and a saved config parses it as 0.0, so the two hash
    # apart (changing either hash would orphan runs on disk): each accepts the other's instead.
    for gan in ("r3gan64", "dcgan64", "skipgan512"):
        built = preset(gan)
        rebuilt = RunConfig.from_dict(built.to_dict())
        assert built.hash() in rebuilt.accepted_hashes() and rebuilt.hash() in built.accepted_hashes()
    assert RunConfig.from_dict(preset("r3gan64").to_dict()).hash() != preset("r3gan64").hash()
    hinge = apply_overrides(preset("r3gan64"), ["loss.kind=hinge"])
    assert not hinge.accepted_hashes() & preset("r3gan64").accepted_hashes()
    finetune = apply_overrides(preset("r3gan64"), ["optim.finetune_from=0.5"])
    assert not finetune.accepted_hashes() & preset("r3gan64").accepted_hashes()


def test_deepspeed_config_does_not_import_the_config_that_imports_it():
    names = set()
    for module in ("deepspeed_config", "config_schema", "config_keys"):
        tree = ast.parse((REPO / "hpcgan" / "train" / f"{module}.py").read_text())
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "hpcgan.train.config" not in names and "hpcgan.train.deepspeed_config" not in names


def _rows(out: str) -> dict[str, str]:
    """The table's first line per key: its cells, stripped."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0] and cells[0] not in rows:
            rows[cells[0]] = cells
    return rows


def test_hpcgan_config_lists_every_key_with_the_preset_default_and_meaning(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["config", "--gan", "r3gan64"]) == 0
    rows = _rows(capsys.readouterr().out)
    for k in walk(preset("r3gan64")):
        name, kind, default, meaning = rows[k.name]
        assert default == _shown(k.value), k.name
        assert meaning and k.help.startswith(meaning.split(" ")[0]), k.name
    assert rows["model.arch"][1:3] == ["mlp | dcgan | skipgan | bigan | r3gan", "r3gan"]
    assert rows["loss.kind"][2] == "rpgan" and rows["train.steps"][1:3] == ["int", "1000"]


def test_hpcgan_config_without_gan_shows_the_plain_defaults_and_applies_overrides(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["config", "train.steps=5"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["model.arch"][2] == "dcgan" and rows["train.steps"][2] == "5"


@pytest.mark.parametrize(("args", "words"), [
    (["--gan", "nope"], ["--gan nope", "unknown preset", "r3gan64", "sngan256"]),
    (["--gan", "r3gan64", "loss.kind=foo"], ["loss.kind=foo: expected one of bce, hinge, wgan, rpgan"]),
])  # fmt: skip
def test_hpcgan_config_refuses_in_one_line(capsys, args, words):
    assert main(["config", *args]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert not out and len(lines) == 1 and all(w in lines[0] for w in words), err
