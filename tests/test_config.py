from dataclasses import dataclass, field
from typing import Literal

import pytest

from genlab.config import apply_overrides, from_dict, pick_preset, to_dict
from genlab.errors import GenlabError
from genlab.train import TrainConfig


@dataclass
class Inner:
    channels: tuple[int, ...] = (8, 16)
    kind: Literal["a", "b"] = "a"


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 10
    lr: float = 1e-3
    amp: bool = False
    name: str | None = None


def test_overrides_parse_against_type_hints():
    cfg = apply_overrides(Outer(), ["steps=5", "lr=3e-4", "amp=true", "inner.channels=4,8,16", "inner.kind=b",
                                    "name=none"])
    assert cfg == Outer(Inner((4, 8, 16), "b"), 5, 3e-4, True, None)


@pytest.mark.parametrize("override, words", [
    ("steps=abc", "expected int"), ("nope=1", "has no field 'nope'"), ("inner.kind=c", "choose one of a, b"),
    ("amp=maybe", "expected bool"), ("steps", "expected key=value"), ("inner=3", "nested config"),
    ("inner.channels=1,x", "expected int"),
])
def test_bad_overrides_name_the_problem(override, words):
    with pytest.raises(GenlabError, match=words):
        apply_overrides(Outer(), [override])


def test_round_trip_and_strict_loading():
    cfg = Outer(Inner((1, 2), "b"), 3, 0.5, True, "x")
    assert from_dict(Outer, to_dict(cfg)) == cfg
    with pytest.raises(GenlabError, match="unknown keys: inner.extra"):
        from_dict(Outer, {"inner": {"extra": 1}})
    with pytest.raises(GenlabError, match="'steps' has value '3'"):
        from_dict(Outer, {"steps": "3"})


def test_pick_preset_lists_choices():
    with pytest.raises(GenlabError, match="unknown preset 'c': choose one of a, b"):
        pick_preset({"a": 1, "b": 2}, "c")


# ---------------------------------------------------------------------------------------------------------------
# Configs that check their own values, and keys renamed since a config was stored.


@dataclass
class Stage:
    channels: tuple[int, ...] = (8, 16)
    groups: int = 4

    def __post_init__(self):
        if any(c % self.groups for c in self.channels):
            raise GenlabError(f"channels {self.channels} must be divisible by groups={self.groups}")


@dataclass
class Net:
    stage: Stage = field(default_factory=Stage)
    steps: int = 10


def test_rules_see_all_overrides_at_once_and_name_the_ones_at_fault():
    # Either order works: the rule is checked on the result, not after each override.
    for order in (["stage.channels=24,48", "stage.groups=12"], ["stage.groups=12", "stage.channels=24,48"]):
        assert apply_overrides(Net(), order).stage == Stage((24, 48), 12)
    with pytest.raises(GenlabError, match=r"^bad override stage\.groups=5: channels \(8, 16\) must be"):
        apply_overrides(Net(), ["steps=3", "stage.groups=5"])


@pytest.mark.parametrize("key, value", [("steps", -5), ("steps", 0), ("batch_size", 0), ("lr", 0.0), ("lr", -1.0),
                                        ("grad_accum", 0), ("beta1", 1.0), ("beta2", 1.5), ("ema_decay", 1.0),
                                        ("warmup_steps", -1), ("grad_clip", -1.0), ("keep_checkpoints", 0),
                                        ("min_lr_ratio", 2.0), ("log_every", 0)])
def test_train_config_refuses_values_out_of_range(key, value):
    with pytest.raises(GenlabError, match=f"train.{key} must be"):
        TrainConfig(**{key: value})
    with pytest.raises(GenlabError, match=f"bad override train.{key}={value}"):
        apply_overrides(_Run(), [f"train.{key}={value}"])


@dataclass
class _Run:
    train: TrainConfig = field(default_factory=TrainConfig)


def test_renamed_train_amp_reads_stored_configs_and_points_overrides_to_precision():
    with pytest.warns(DeprecationWarning, match="train.amp is deprecated"):
        old = from_dict(_Run, {"train": {"steps": 7, "amp": "bf16"}})
    assert old.train.precision == "bf16" and old.train.steps == 7
    with pytest.warns(DeprecationWarning):
        assert from_dict(TrainConfig, {"amp": "none"}).precision == "fp32"
    with pytest.raises(GenlabError, match="'amp' was renamed, use train.precision=bf16"):
        apply_overrides(_Run(), ["train.amp=bf16"])
    assert apply_overrides(_Run(), ["train.precision=bf16"]).train.precision == "bf16"
    with pytest.raises(GenlabError, match="choose one of fp32, bf16"):
        apply_overrides(_Run(), ["train.precision=fp16"])
