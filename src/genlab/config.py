"""Typed configs: a dataclass per model or run, named presets, and ``key=value`` overrides.

A config is a plain (possibly nested) dataclass. It travels with the weights: :func:`to_dict` writes it into
every checkpoint and :func:`from_dict` rebuilds it, refusing keys it does not know and values of the wrong
type, so that weights never load into a model they were not made for.

Overrides use dotted keys for nested configs (``model.channels=32,64``); each value is parsed against the
field's type hint (int, float, bool, str, tuples, ``Literal``, ``Optional``) and a wrong one is refused with
a line that names the key, the value and the type expected.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import GenlabError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_optional(hint: Any) -> tuple[bool, Any]:
    """(True, inner) for ``X | None`` / ``Optional[X]``."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(get_args(hint)) == 2:
            return True, args[0]
    return False, hint


def parse_value(text: str, hint: Any, key: str) -> Any:
    """Parse the command-line string ``text`` into a value of type ``hint`` (raises GenlabError)."""
    optional, hint = _is_optional(hint)
    if optional and text.lower() in ("none", "null", ""):
        return None
    origin = get_origin(hint)
    try:
        if hint is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if hint is str:
            return text
        if origin is Literal:
            choices = get_args(hint)
            if text not in choices:
                raise GenlabError(f"bad override {key}={text}: choose one of {', '.join(map(str, choices))}")
            return text
        if origin in (tuple, list):
            args = get_args(hint)
            inner = args[0] if args else str
            items = [s for s in text.replace("(", "").replace(")", "").split(",") if s.strip() != ""]
            values = [parse_value(s.strip(), inner, key) for s in items]
            return tuple(values) if origin is tuple else values
    except GenlabError:
        raise
    except ValueError:
        pass
    else:
        raise GenlabError(f"bad override {key}={text}: fields of type {hint} cannot be set from the command line")
    raise GenlabError(f"bad override {key}={text}: expected {getattr(hint, '__name__', hint)}")


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """Validate a value read from JSON against ``hint``; tuples come back from JSON as lists."""
    optional, hint = _is_optional(hint)
    if value is None:
        if optional:
            return None
        raise GenlabError(f"config key {key!r} may not be null")
    origin = get_origin(hint)
    ok = True
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise GenlabError(f"config key {key!r} should be an object")
        return from_dict(hint, value, _prefix=key + ".")
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is Literal:
        ok = value in get_args(hint)
    elif origin in (tuple, list):
        ok = isinstance(value, (list, tuple))
        if ok:
            args = get_args(hint)
            inner = args[0] if args else Any
            value = [(_check_type(v, inner, key) if inner is not Any else v) for v in value]
            value = tuple(value) if origin is tuple else list(value)
    elif origin is dict:
        ok = isinstance(value, dict)
    if not ok:
        raise GenlabError(f"config key {key!r} has value {value!r}, expected {getattr(hint, '__name__', hint)}")
    return value


def from_dict(cls: type[T], data: dict[str, Any], _prefix: str = "") -> T:
    """Rebuild a config dataclass from a dict, refusing unknown keys and wrongly typed values."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise GenlabError(f"config for {cls.__name__} has unknown keys: {', '.join(_prefix + k for k in unknown)}")
    kwargs = {k: _check_type(v, hints[k], _prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of ``cfg`` with ``key=value`` overrides applied (dotted keys reach nested configs)."""
    for item in overrides:
        if "=" not in item:
            raise GenlabError(f"bad override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        cfg = _set(cfg, key.strip().split("."), text.strip(), key.strip())
    return cfg


def _set(cfg: Any, path: list[str], text: str, full_key: str) -> Any:
    names = {f.name for f in dataclasses.fields(cfg)}
    head = path[0]
    if head not in names:
        raise GenlabError(
            f"bad override {full_key}={text}: {type(cfg).__name__} has no field {head!r} "
            f"(fields: {', '.join(sorted(names))})"
        )
    hint = _hints(type(cfg))[head]
    if len(path) > 1:
        child = getattr(cfg, head)
        if not dataclasses.is_dataclass(child):
            raise GenlabError(f"bad override {full_key}={text}: {head!r} is not a nested config")
        return dataclasses.replace(cfg, **{head: _set(child, path[1:], text, full_key)})
    if dataclasses.is_dataclass(hint):
        raise GenlabError(f"bad override {full_key}={text}: {head!r} is a nested config; set one of its fields")
    return dataclasses.replace(cfg, **{head: parse_value(text, hint, full_key)})


def pick_preset(presets: dict[str, T], name: str, what: str = "preset") -> T:
    """Look up a named preset, or fail with one line listing the names there are."""
    if name not in presets:
        raise GenlabError(f"unknown {what} {name!r}: choose one of {', '.join(sorted(presets))}")
    return presets[name]
