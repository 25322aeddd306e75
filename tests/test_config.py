from dataclasses import dataclass, field
from typing import Literal

import pytest

from genlab.config import apply_overrides, from_dict, pick_preset, to_dict
from genlab.errors import GenlabError


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
