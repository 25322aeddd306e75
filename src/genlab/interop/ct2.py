"""A reader for CTranslate2's ``model.bin`` (the format faster-whisper ships), written from the format itself
so that genlab never imports ctranslate2.

Layout (binary versions 2 to 6, little-endian; strings are a uint16 length counting a trailing NUL, then the
bytes and the NUL)::

    uint32 binary_version
    string spec_name; uint32 spec_revision                       (version >= 2)
    uint32 n_variables, then per variable:
        string name; uint8 rank; uint32 dims[rank]
        uint8 dtype_id; uint32 n_bytes                           (version >= 4; before: uint8 item_size,
                                                                  uint32 n_items)
        n_bytes of row-major data
    uint32 n_aliases, then per alias: string alias; string target  (version >= 3)

dtype ids: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Quantized models store int8 weights
with a ``<name>_scale`` float32 tensor per output row (w = q / scale), which :func:`dequantize` undoes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import GenlabError

_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}
_ITEM_SIZE_BEFORE_V4 = {4: torch.float32, 1: torch.int8, 2: torch.int16}
MAX_BINARY_VERSION = 6


@dataclass
class CT2Model:
    spec: str
    revision: int
    binary_version: int
    variables: dict[str, torch.Tensor]
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> torch.Tensor:
        return self.variables[self.aliases.get(name, name)]


class _Cursor:
    def __init__(self, buf: memoryview, source: str):
        self.buf, self.pos, self.source = buf, 0, source

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            need, have = self.pos + n, len(self.buf)
            raise GenlabError(f"{self.source}: truncated CTranslate2 model (needs {need} bytes, has {have})")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def string(self) -> str:
        (n,) = self.unpack("H")
        raw = bytes(self.take(n))
        if n == 0 or raw[-1] != 0:
            raise GenlabError(f"{self.source}: corrupt CTranslate2 model (bad string at byte {self.pos - n})")
        return raw[:-1].decode("utf-8", errors="replace")


def read_ct2(paths: str | os.PathLike | list) -> CT2Model:
    """Read ``model.bin`` (or its parts in order, concatenated) into tensors; refuse anything else in one line."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    source = os.fspath(paths[0])
    try:
        data = b"".join(open(p, "rb").read() for p in paths)
    except OSError as e:
        raise GenlabError(f"{source}: cannot read ({e.strerror})") from None
    cur = _Cursor(memoryview(data), source)
    (version,) = cur.unpack("I")
    if not 2 <= version <= MAX_BINARY_VERSION:
        raise GenlabError(f"{source}: not a CTranslate2 model.bin (binary version {version}, expected 2..6)")
    spec = cur.string()
    (revision,) = cur.unpack("I")
    (n_vars,) = cur.unpack("I")
    variables: dict[str, torch.Tensor] = {}
    for _ in range(n_vars):
        name = cur.string()
        (rank,) = cur.unpack("B")
        shape = cur.unpack(f"{rank}I") if rank else ()
        if version >= 4:
            dtype_id, n_bytes = cur.unpack("BI")
            if dtype_id not in _DTYPES:
                raise GenlabError(f"{source}: variable {name} has unknown dtype id {dtype_id}")
            dtype = _DTYPES[dtype_id]
        else:
            item_size, n_items = cur.unpack("BI")
            dtype, n_bytes = _ITEM_SIZE_BEFORE_V4[item_size], item_size * n_items
        raw = cur.take(n_bytes)
        numel = int(np.prod(shape)) if shape else 1
        if numel * torch.empty((), dtype=dtype).element_size() != n_bytes:
            raise GenlabError(f"{source}: variable {name} has {n_bytes} bytes for shape {tuple(shape)}")
        # frombuffer shares the bytes; clone so the tensor owns aligned memory.
        t = torch.frombuffer(bytearray(raw), dtype=dtype) if n_bytes else torch.empty(0, dtype=dtype)
        variables[name] = t.reshape(shape)
    aliases = {}
    if version >= 3:
        (n_alias,) = cur.unpack("I")
        for _ in range(n_alias):
            alias = cur.string()
            aliases[alias] = cur.string()
    if cur.pos != len(data):
        raise GenlabError(f"{source}: {len(data) - cur.pos} unexpected bytes after the CTranslate2 model")
    return CT2Model(spec=spec, revision=revision, binary_version=version, variables=variables, aliases=aliases)


def dequantize(model: CT2Model) -> dict[str, torch.Tensor]:
    """Float tensors by name: int8/int16 weights divided by their ``_scale``; aliases resolved."""
    out = {}
    for name, t in model.variables.items():
        if name.endswith("_scale"):
            continue
        scale = model.variables.get(name + "_scale")
        if scale is not None and not t.is_floating_point():
            t = t.float() / scale.float().reshape(-1, *([1] * (t.ndim - 1)))
        out[name] = t
    for alias, target in model.aliases.items():
        if target in out:
            out[alias] = out[target]
    return out
