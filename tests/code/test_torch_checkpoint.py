"""Reading PyTorch legacy checkpoints without PyTorch: the format, strides, and refusing anything but tensors."""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.model.backbones.torch_checkpoint import MAGIC, PROTOCOL, CheckpointError, read_legacy_checkpoint


class _Storage:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


@contextlib.contextmanager
def _stand_in_torch() -> Iterator[types.SimpleNamespace]:
    """Modules named like PyTorch's, only while writing: pickle looks up what it writes by reference."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: the reader must not import torch")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    storage_type = type("FloatStorage", (), {"__module__": "torch"})
    torch.FloatStorage, torch._utils, utils._rebuild_tensor_v2 = storage_type, utils, _rebuild_tensor_v2
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield types.SimpleNamespace(rebuild=_rebuild_tensor_v2, storage_type=storage_type)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


class _Writer(pickle.Pickler):
    """Writes a state dict the way torch.save's legacy format does: storages as persistent ids."""

    def __init__(self, stream, torch) -> None:
        super().__init__(stream, protocol=2)
        self.torch = torch

    def reducer_override(self, obj):
        if isinstance(obj, _Tensor):
            return (
                self.torch.rebuild,
                (obj.storage, obj.offset, obj.size, obj.stride, False, collections.OrderedDict()),
            )
        return NotImplemented

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", self.torch.storage_type, obj.key, "cpu", obj.array.size)
        return None


def _write(path: Path, state: dict, storages: list[_Storage]) -> None:
    buf = io.BytesIO()
    for header in (MAGIC, PROTOCOL, {"protocol_version": PROTOCOL, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    with _stand_in_torch() as torch:
        _Writer(buf, torch).dump(state)
    pickle.dump([s.key for s in storages], buf, protocol=2)
    for storage in storages:
        buf.write(struct.pack("<q", storage.array.size))
        buf.write(storage.array.astype("<f4").tobytes())
    path.write_bytes(buf.getvalue())


def _raw_global_pickle(module: str, name: str) -> bytes:
    """A pickle that calls ``module.name()`` when loaded unrestricted (GLOBAL + EMPTY_TUPLE + REDUCE)."""
    return b"c" + f"{module}\n{name}\n".encode() + b")R."


def test_reads_tensors_with_offsets_and_strides(tmp_path) -> None:
    data = np.arange(24, dtype=np.float32)
    storage = _Storage("0", data)
    state = collections.OrderedDict(
        weight=_Tensor(storage, 0, (2, 3), (3, 1)),  # contiguous
        transposed=_Tensor(storage, 0, (3, 2), (1, 3)),  # a view with other strides
        tail=_Tensor(storage, 20, (4,), (1,)),  # an offset into the storage
    )
    file = tmp_path / "small.pth"
    _write(file, state, [storage])
    arrays = read_legacy_checkpoint(file)
    np.testing.assert_array_equal(arrays["weight"], data[:6].reshape(2, 3))
    np.testing.assert_array_equal(arrays["transposed"], data[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(arrays["tail"], data[20:24])
    assert all(a.flags["C_CONTIGUOUS"] and a.flags["OWNDATA"] for a in arrays.values())


def test_refuses_a_checkpoint_that_would_run_code(tmp_path) -> None:
    file = tmp_path / "evil.pth"
    body = b"".join(pickle.dumps(h, protocol=2) for h in (MAGIC, PROTOCOL, {"little_endian": True}))
    file.write_bytes(body + _raw_global_pickle("os", "system"))
    with pytest.raises(CheckpointError, match=r"refusing to unpickle os\.system"):
        read_legacy_checkpoint(file)
    file.write_bytes(_raw_global_pickle("builtins", "exec"))  # even before the magic number
    with pytest.raises(CheckpointError, match="refusing to unpickle builtins.exec"):
        read_legacy_checkpoint(file)


def test_refuses_other_files(tmp_path) -> None:
    file = tmp_path / "x.pth"
    file.write_bytes(pickle.dumps(12345))
    with pytest.raises(CheckpointError, match="bad magic number"):
        read_legacy_checkpoint(file)
    file.write_bytes(b"PK\x03\x04 a zip checkpoint")
    with pytest.raises(CheckpointError, match="unreadable pickle"):
        read_legacy_checkpoint(file)


def test_refuses_a_truncated_checkpoint(tmp_path) -> None:
    storage = _Storage("0", np.arange(8, dtype=np.float32))
    file = tmp_path / "cut.pth"
    _write(file, collections.OrderedDict(w=_Tensor(storage, 0, (8,), (1,))), [storage])
    file.write_bytes(file.read_bytes()[:-5])
    with pytest.raises(CheckpointError, match="truncated"):
        read_legacy_checkpoint(file)
