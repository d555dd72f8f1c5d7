"""Read a PyTorch *legacy* (non-zip) checkpoint with numpy alone, unpickling only what tensors need.

The format, as ``torch.save(..., _use_new_zipfile_serialization=False)`` writes it: five pickles (a magic
number, the protocol version, system info, the state dict, the list of storage keys) followed by each
storage in that order (an int64 element count, then little-endian data). Tensors in the state dict point
at storages by key, with an offset, a size and strides. Unpickling is restricted to the tensor-rebuild
functions, the storage types and ``OrderedDict``: anything else in the file is refused, so a checkpoint
cannot run code. PyTorch itself is never imported.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """Not a legacy PyTorch checkpoint, or one holding something other than tensors."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _TensorRef:
    storage_key: str
    dtype: Any
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: tuple[str, Any], offset: int, size: tuple, stride: tuple, *_: Any) -> _TensorRef:
    key, dtype = storage
    return _TensorRef(key, dtype, int(offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only tensor rebuilding, storage types and ``OrderedDict``; storages stay references."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise CheckpointError(f"refusing to unpickle {module}.{name}")

    def persistent_load(self, pid: Any) -> tuple[str, Any]:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r:.60}")
        storage_type = pid[1]
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError("storage without a known type")
        return str(pid[2]), STORAGE_DTYPES[storage_type.name]


def _unpickle(stream: BinaryIO) -> Any:
    try:
        return _RestrictedUnpickler(stream).load()
    except CheckpointError:
        raise
    except Exception as exc:  # truncated or foreign files raise many types
        raise CheckpointError(f"unreadable pickle: {exc.__class__.__name__}: {exc}") from None


def _array(ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    data = storages[ref.storage_key]
    needed = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True)) + 1
    if ref.size and needed > len(data):
        raise CheckpointError(f"tensor of size {ref.size} runs past its storage ({len(data)} elements)")
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :], shape=ref.size, strides=[s * data.itemsize for s in ref.stride], writeable=False
    )
    return np.array(view, order="C")  # a contiguous, writable copy that owns its memory


def read_legacy_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The state dict of a legacy PyTorch checkpoint as numpy arrays, in file order.

    Raises:
        CheckpointError: the file is not such a checkpoint, or would unpickle anything but tensors.
    """
    with open(path, "rb") as stream:
        if _unpickle(stream) != MAGIC:
            raise CheckpointError(f"{path}: not a legacy PyTorch checkpoint (bad magic number)")
        if _unpickle(stream) != PROTOCOL:
            raise CheckpointError(f"{path}: unsupported protocol version")
        info = _unpickle(stream)
        if not isinstance(info, dict) or not info.get("little_endian", False):
            raise CheckpointError(f"{path}: only little-endian checkpoints are supported")
        state = _unpickle(stream)
        keys = _unpickle(stream)
        if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
            raise CheckpointError(f"{path}: the state dict holds something other than tensors")
        dtypes = {ref.storage_key: ref.dtype for ref in state.values()}
        storages: dict[str, np.ndarray] = {}
        for key in keys:
            header = stream.read(8)
            if len(header) != 8 or key not in dtypes:
                raise CheckpointError(f"{path}: truncated or unexpected storage {key!r}")
            (count,) = struct.unpack("<q", header)
            dtype = np.dtype(dtypes[key]).newbyteorder("<")
            raw = stream.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise CheckpointError(f"{path}: storage {key!r} is truncated")
            storages[key] = np.frombuffer(raw, dtype=dtype)
    return {name: _array(ref, storages) for name, ref in state.items()}
