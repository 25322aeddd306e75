"""Typed configs: a dataclass per model or run, named presets, and ``key=value`` overrides.

A config is a plain (possibly nested) dataclass. It travels with the weights: :func:`to_dict` writes it into
every checkpoint and :func:`from_dict` rebuilds it, refusing keys it does not know and values of the wrong
type, so that weights never load into a model they were not made for.

Overrides use dotted keys for nested configs (``model.channels=32,64``); each value is parsed against the
field's type hint (int, float, bool, str, tuples, ``Literal``, ``Optional``) and a wrong one is refused with
a line that names the key, the value and the type expected. A config may check its values in ``__post_init__``
(raising :class:`GenlabError`): an override that breaks a rule is refused with the override and the rule in one line,
before any work starts.

A config whose keys were renamed lists them in a ``RENAMED`` class variable, ``{old: (new, {old value: new
value})}``: stored configs (checkpoints, run directories) written before the rename still load, with a
``DeprecationWarning``; an override with the old key is refused with a pointer to the new one.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
import warnings
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
    data = _upgrade(cls, data, names, _prefix)
    unknown = sorted(set(data) - names)
    if unknown:
        raise GenlabError(f"config for {cls.__name__} has unknown keys: {', '.join(_prefix + k for k in unknown)}")
    kwargs = {k: _check_type(v, hints[k], _prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except _RuleError:
        raise
    except GenlabError as e:  # the config's own checks (__post_init__) refuse these values
        raise _RuleError(str(e), _prefix) from None


class _RuleError(GenlabError):
    """A config's own check failed; ``prefix`` is where that config sits (``"model."``), to find the overrides."""

    def __init__(self, message: str, prefix: str):
        super().__init__(f"{prefix.rstrip('.') + ': ' if prefix else ''}{message}")
        self.rule, self.prefix = message, prefix


def _renamed(cls: type) -> dict[str, tuple[str, dict[Any, Any]]]:
    return getattr(cls, "RENAMED", {})


def _upgrade(cls: type, data: dict[str, Any], names: set[str], prefix: str) -> dict[str, Any]:
    """Map the keys a stored config may still have from before a rename (``cls.RENAMED``) to the new ones."""
    renamed = {old: rule for old, rule in _renamed(cls).items() if old in data and old not in names}
    if not renamed:
        return data
    data = dict(data)
    for old, (new, values) in renamed.items():
        value = data.pop(old)
        if value not in values:
            raise GenlabError(f"config key {prefix + old!r} (now {prefix + new!r}) has value {value!r}, "
                              f"expected one of {', '.join(map(repr, values))}")
        warnings.warn(f"config key {prefix + old} is deprecated: read as {prefix + new}={values[value]}",
                      DeprecationWarning, stacklevel=3)
        data.setdefault(new, values[value])
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a copy of ``cfg`` with ``key=value`` overrides applied (dotted keys reach nested configs).

    Every value is parsed against its field's type as it comes; the config's own checks run once, on the result,
    so that two overrides which only make sense together (channels and their norm groups) may come in any order.
    """
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise GenlabError(f"bad override {item!r}: expected key=value")
        key, text = (part.strip() for part in item.split("=", 1))
        _set(type(cfg), data, key.split("."), text, key)
    try:
        return from_dict(type(cfg), data)
    except _RuleError as e:
        # Name the overrides that the broken rule is about: those inside that config whose field the rule names.
        named = [o for o in overrides if o.split("=", 1)[0].strip().startswith(e.prefix)
                 and re.search(rf"\b{re.escape(o.split('=', 1)[0].strip().split('.')[-1])}\b", e.rule)]
        where = f"bad override{'s' if len(named) > 1 else ''} {' '.join(named)}" if named else "bad config"
        raise GenlabError(f"{where}: {e.rule}") from None


def _set(cls: type, data: dict[str, Any], path: list[str], text: str, full_key: str) -> None:
    """Parse ``text`` against the type of the field ``path`` of ``cls`` and store it in ``data`` (a to_dict)."""
    names = {f.name for f in dataclasses.fields(cls)}
    head = path[0]
    if head not in names and head in _renamed(cls):
        new, values = _renamed(cls)[head]
        hint = f"{'.'.join([*full_key.split('.')[:-1], new])}={values.get(text, '...')}"
        raise GenlabError(f"bad override {full_key}={text}: {head!r} was renamed, use {hint}")
    if head not in names:
        raise GenlabError(
            f"bad override {full_key}={text}: {cls.__name__} has no field {head!r} "
            f"(fields: {', '.join(sorted(names))})"
        )
    optional, hint = _is_optional(_hints(cls)[head])
    if len(path) > 1:
        if not dataclasses.is_dataclass(hint) or not isinstance(data.get(head), dict):
            raise GenlabError(f"bad override {full_key}={text}: {head!r} is not a nested config")
        _set(hint, data[head], path[1:], text, full_key)
        return
    if dataclasses.is_dataclass(hint):
        raise GenlabError(f"bad override {full_key}={text}: {head!r} is a nested config; set one of its fields")
    value = parse_value(text, _hints(cls)[head], full_key)
    data[head] = list(value) if isinstance(value, tuple) else value


def pick_preset(presets: dict[str, T], name: str, what: str = "preset") -> T:
    """Look up a named preset, or fail with one line listing the names there are."""
    if name not in presets:
        raise GenlabError(f"unknown {what} {name!r}: choose one of {', '.join(sorted(presets))}")
    return presets[name]
