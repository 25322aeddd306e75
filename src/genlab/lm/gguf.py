"""Reading GGUF, llama.cpp's single-file model format: metadata, tensors, and their dequantisation to float32.

Layout (GGUF v2/v3, little-endian): ``b"GGUF"``, version (u32), tensor count and metadata count (u64); the
metadata as key (string), value type (u32), value; one record per tensor (name, n_dims, dims with the fastest
dimension first, ggml type, offset); padding to ``general.alignment`` (32 by default); the tensor data.

The header is parsed here with ``struct`` (the ``gguf`` package's ``GGUFReader`` builds a numpy view per token
string and takes ~9 s on SmolLM2's 49,152-token vocabulary; this takes a tenth of a second), and every block
format is dequantised by ``gguf.quants.dequantize`` (numpy), the reference implementation llama.cpp ships.
A file that ends early or claims a type it cannot hold is refused in one line naming the file.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GenlabError

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order: slowest dimension first, e.g. (out_features, in_features)
    ggml_type: int
    offset: int  # absolute byte offset in the file
    nbytes: int


class _Cursor:
    """Reads little-endian values from a bytes-like buffer, refusing to run past its end."""

    def __init__(self, buf, path: Path):
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            raise GenlabError(f"{self.path}: truncated GGUF (the header needs byte {self.pos + n:,}; "
                              f"the file has {len(self.buf):,})")
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def scalar(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.scalar("<Q")).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype, n = self.scalar("<I"), self.scalar("<Q")
            if itype in _SCALARS and itype != 7:  # numbers: one read for all of them
                fmt = _SCALARS[itype]
                return np.frombuffer(self.take(n * struct.calcsize(fmt)), dtype=np.dtype(fmt)).tolist()
            return [self.value(itype) for _ in range(n)]
        raise GenlabError(f"{self.path}: not a GGUF file this reader knows (metadata value type {vtype})")


class GGUFFile:
    """A GGUF file's ``metadata`` (dict) and ``tensors`` (name -> :class:`TensorInfo`); :meth:`tensor` dequantises.

    The file is memory-mapped, so opening costs only the header; each tensor is read when asked for.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise GenlabError(f"GGUF file not found: {self.path}") from None
        except (OSError, ValueError) as e:  # ValueError: an empty file cannot be mapped
            raise GenlabError(f"{self.path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
        self._data = np.frombuffer(self._map, dtype=np.uint8)  # a plain array over the map: slices cost nothing
        cur = _Cursor(memoryview(self._map), self.path)
        if cur.take(4) != b"GGUF":
            raise GenlabError(f"{self.path}: not a GGUF file (no GGUF magic)")
        self.version = cur.scalar("<I")
        if self.version not in (2, 3):
            raise GenlabError(f"{self.path}: GGUF version {self.version} (this reader knows 2 and 3)")
        n_tensors, n_kv = cur.scalar("<Q"), cur.scalar("<Q")
        self.metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            self.metadata[key] = cur.value(cur.scalar("<I"))
        records = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.scalar("<Q") for _ in range(cur.scalar("<I"))]
            records.append((name, dims, cur.scalar("<I"), cur.scalar("<Q")))
        align = int(self.metadata.get("general.alignment", 32))
        start = -(-cur.pos // align) * align
        self.tensors = {name: self._info(name, dims, t, start + off) for name, dims, t, off in records}

    def _info(self, name: str, dims: list[int], ggml_type: int, offset: int) -> TensorInfo:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
        except (ValueError, KeyError):
            raise GenlabError(f"{self.path}: tensor {name} has unknown ggml type {ggml_type}") from None
        count = int(np.prod(dims)) if dims else 1
        if dims and dims[0] % block:
            raise GenlabError(f"{self.path}: tensor {name} rows of {dims[0]} are not whole blocks of {block}")
        nbytes = count // block * size
        if offset + nbytes > len(self._data):
            raise GenlabError(f"{self.path}: truncated GGUF (tensor {name} ends at byte {offset + nbytes:,}; "
                              f"the file has {len(self._data):,})")
        return TensorInfo(name, tuple(reversed(dims)), ggml_type, offset, nbytes)

    def tensor(self, name: str) -> np.ndarray:
        """The tensor ``name`` as float32, shaped in torch order (``(out, in)`` for a weight matrix)."""
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        info = self.tensors[name]
        raw = self._data[info.offset : info.offset + info.nbytes]
        rows = raw.reshape(*info.shape[:-1], -1) if len(info.shape) > 1 else raw  # (..., bytes per row)
        out = dequantize(rows, GGMLQuantizationType(info.ggml_type)).reshape(info.shape)
        return np.array(out, dtype=np.float32)  # a copy: F32 tensors are views of the read-only map

    def q4_1(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A Q4_1 tensor's blocks as stored, without dequantising: ``codes`` ``(out, in)`` uint8 in 0..15, ``d`` and
        ``m`` ``(out, in / 32)`` float32 (exact: they are stored as float16), with ``w = d * q + m`` per block.

        A Q4_1 block (ggml's ``block_q4_1``) is 20 bytes for 32 weights: ``d`` and ``m`` (float16), then 16 bytes
        whose low nibbles are weights 0..15 and high nibbles weights 16..31."""
        raw = self._blocks(name, "Q4_1", 20)  # (out, blocks, bytes)
        nibbles = raw[..., 4:]  # (out, blocks, 16)
        codes = np.concatenate([nibbles & 15, nibbles >> 4], axis=-1).reshape(self.tensors[name].shape)  # (out, in)
        return codes, _half(raw, 0), _half(raw, 2)

    def q8_0(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A Q8_0 tensor's blocks as stored: ``codes`` ``(out, in)`` int8 and ``d`` ``(out, in / 32)`` float32 (stored
        as float16), ``w = d * q`` per block. A Q8_0 block (ggml's ``block_q8_0``) is 34 bytes: ``d``, then 32
        int8 weights."""
        raw = self._blocks(name, "Q8_0", 34)  # (out, blocks, bytes)
        codes = raw[..., 2:].copy().view(np.int8).reshape(self.tensors[name].shape)  # (out, in)
        return codes, _half(raw, 0)

    def _blocks(self, name: str, kind: str, block_bytes: int) -> np.ndarray:
        """A ``kind`` matrix's raw blocks of 32 weights, ``(out, in / 32, block_bytes)`` uint8, or one line refusing
        a tensor of another type or shape."""
        from gguf import GGMLQuantizationType

        info = self.tensors[name]
        if info.ggml_type != GGMLQuantizationType[kind] or len(info.shape) != 2:
            raise GenlabError(f"{self.path}: tensor {name} is {self.type_name(name)} {info.shape}, not a {kind} matrix")
        out, cols = info.shape
        return self._data[info.offset : info.offset + info.nbytes].reshape(out, cols // 32, block_bytes)

    def type_name(self, name: str) -> str:
        from gguf import GGMLQuantizationType

        return GGMLQuantizationType(self.tensors[name].ggml_type).name


def _half(raw: np.ndarray, at: int) -> np.ndarray:
    """The float16 stored at byte ``at`` of each block of ``raw`` ``(out, blocks, bytes)``, as float32 (exact)."""
    return raw[..., at : at + 2].copy().view(np.float16)[..., 0].astype(np.float32)  # (out, blocks)
