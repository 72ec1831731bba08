"""Reading one CIFAR-10 pickled batch without running code or building anything large.

A batch of the official ``cifar-10-batches-py`` is a Python 2 pickle of a dict::

    {b"batch_label": bytes, b"labels": [int] * N, b"data": uint8 array (N, 3072), b"filenames": [bytes] * N}

with N = 10,000. ``pickle.load`` calls whatever function a file names, so a crafted file could run code, and
even NumPy's constructors build an array of any size (or uninitialised memory) from a few bytes. ``read_batch``
admits exactly what a real batch holds, checked before anything large exists: a file of at most
``MAX_FILE_BYTES``, read whole, whose opcodes ``pickletools`` scans first (every declared length is in the file,
every memo index small: CPython's unpickler would reserve memory for what a file only claims to hold); only the
three globals a batch uses, each answered by a stand-in, never by NumPy; the array built only from a checked
state; a dict of ``b"data"`` and ``b"labels"`` (N ints in 0..9). Anything else raises ``BatchRefused``.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path

import numpy as np

MAX_ROWS = 10_000  # images in a real batch
ROW_BYTES = 3072  # 32 x 32 x 3
MAX_FILE_BYTES = 32 * 2**20  # a real batch is 31,035,704 bytes
_MEMO_OPS = ("PUT", "BINPUT", "LONG_BINPUT")


class BatchRefused(ValueError):
    """The file is not a genuine CIFAR-10 batch; the message says why (without the file's name)."""


def _short(obj, limit: int = 40) -> str:
    """A short description of something a file built: its type, never its (possibly huge or deep) contents."""
    if type(obj) is int and obj.bit_length() > 64:
        return f"an int of {obj.bit_length()} bits"  # repr of a huge int is slow (and refused past 4300 digits)
    if type(obj) in (bytes, str, int):
        text = repr(obj[:limit] if type(obj) is not int else obj)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {type(obj).__name__}"


class _NdarrayName:
    """What a file gets for ``numpy.ndarray``: a name to hand to ``_reconstruct``, never a constructor."""

    def __new__(cls, *args, **kwargs):
        raise BatchRefused(
            "it calls numpy.ndarray directly, which builds an array of any size from a few bytes "
            "(uninitialised, or a view with chosen strides); a real batch never does"
        )


class _Uint8:
    """The file's ``numpy.dtype("u1", 0, 1)``; its state (byte order '|' and flags) says nothing more for uint8."""

    def __setstate__(self, state):
        if type(state) is not tuple or len(state) > 9:
            raise BatchRefused(f"its dtype has the state {_short(state)}, not a dtype's tuple")


class _PendingArray:
    """What ``_reconstruct`` returns: the array exists only once ``__setstate__`` has checked its state."""

    array: np.ndarray | None = None

    def __setstate__(self, state):
        if self.array is not None:
            raise BatchRefused("it sets the state of its array twice")
        if type(state) is not tuple or len(state) not in (4, 5):
            raise BatchRefused(f"its array has the state {_short(state)}, not (version, shape, dtype, order, data)")
        if len(state) == 5:
            if state[0] != 1 or type(state[0]) is not int:
                raise BatchRefused(f"its array has state version {_short(state[0])}, not 1")
            state = state[1:]
        shape, dtype, fortran, raw = state
        if type(shape) is not tuple or len(shape) != 2 or any(type(n) is not int for n in shape):
            raise BatchRefused(f"its array has the shape {_short(shape)}, not (N, {ROW_BYTES})")
        rows, cols = shape
        if cols != ROW_BYTES or not 1 <= rows <= MAX_ROWS:
            raise BatchRefused(
                f"its array has the shape ({rows}, {cols}), not (N, {ROW_BYTES}) with N in 1..{MAX_ROWS}"
            )
        if type(dtype) is not _Uint8:
            raise BatchRefused(f"its array's dtype is {_short(dtype)}, not uint8")
        if fortran is not False and fortran != 0:
            raise BatchRefused("its array is in Fortran order; a real batch is C-contiguous")
        if type(raw) is not bytes or len(raw) != rows * cols:
            size = f"{len(raw)} bytes" if type(raw) is bytes else _short(raw)
            raise BatchRefused(f"its array of shape ({rows}, {cols}) holds {size}, not exactly {rows * cols} bytes")
        self.array = np.frombuffer(raw, np.uint8).reshape(rows, cols)  # C-contiguous, on exactly these bytes


class _BatchUnpickler(pickle.Unpickler):
    """``find_class`` answers from a fixed table of stand-ins; it never imports, so nothing a file names runs."""

    def __init__(self, file):
        super().__init__(file, encoding="bytes")  # the batches were pickled by Python 2
        self.arrays = 0
        self.allowed = {("numpy", "ndarray"): _NdarrayName, ("numpy", "dtype"): self._dtype}
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1 and numpy 2 names
            self.allowed[(module, "_reconstruct")] = self._reconstruct

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except (KeyError, TypeError):
            raise BatchRefused(
                f"it asks for the global {_short(module)}.{_short(name)}, which a batch never needs (it could run code)"
            ) from None

    def _reconstruct(self, cls=None, shape=None, typecode=None, *rest):
        if cls is not _NdarrayName or type(shape) is not tuple or shape != (0,) or typecode != b"b" or rest:
            raise BatchRefused("it calls numpy's _reconstruct with other arguments than (numpy.ndarray, (0,), b'b')")
        self.arrays += 1
        if self.arrays > 1:
            raise BatchRefused("it holds more than one array; a real batch holds one")
        return _PendingArray()

    @staticmethod
    def _dtype(name=None, *rest):
        if name not in (b"u1", "u1") or len(rest) > 2:
            raise BatchRefused(f"it builds the dtype {_short(name)}; a real batch holds only uint8 ('u1')")
        return _Uint8()


def _scan(raw: bytes) -> None:
    """Walk the opcodes without running them: truncated arguments and large memo indices are refused here."""
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(raw)):
            if op.name in _MEMO_OPS and arg > count:  # a genuine pickle numbers its memo 0, 1, 2, ...
                raise BatchRefused(f"it stores into memo slot {arg} after {count} opcodes")
    except BatchRefused:
        raise
    except Exception as e:  # ValueError (truncated, unknown opcode), and whatever a broken argument raises
        raise BatchRefused(f"it is not a complete pickle ({type(e).__name__}: {str(e)[:120]})") from None


def _check(batch) -> tuple[np.ndarray, np.ndarray]:
    if type(batch) is not dict:
        raise BatchRefused(f"it holds {_short(batch)}, not a dict")
    odd = {type(k).__name__ for k in batch if type(k) is not bytes}
    if odd:
        raise BatchRefused(f"its dict has keys of type {', '.join(sorted(odd))}; a batch's keys are all bytes")
    if b"data" not in batch or b"labels" not in batch:
        keys = ", ".join(_short(k) for k in list(batch)[:6]) + (", ..." if len(batch) > 6 else "")
        raise BatchRefused(f"its dict has the keys {keys or '(none)'}, not b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if type(data) is not _PendingArray or data.array is None:
        raise BatchRefused(f"its b'data' is {_short(data)}, not a uint8 array of shape (N, {ROW_BYTES})")
    rows = len(data.array)
    if type(labels) is not list or len(labels) != rows:
        size = f" of {len(labels)}" if type(labels) is list else ""
        raise BatchRefused(f"its b'labels' is {_short(labels)}{size}, not a list of {rows} ints (one per image)")
    if any(type(y) is not int or not 0 <= y <= 9 for y in labels):
        bad = next(y for y in labels if type(y) is not int or not 0 <= y <= 9)
        raise BatchRefused(f"its b'labels' holds {_short(bad)}; labels are ints in 0..9")
    return data.array, np.array(labels, np.int32)


def read_batch(file: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data, labels)`` of one pickled batch: uint8 ``(N, 3072)`` rows and int32 ``(N,)``; else ``BatchRefused``."""
    with open(file, "rb") as fh:
        raw = fh.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise BatchRefused(f"it is larger than {MAX_FILE_BYTES // 2**20} MiB; a real batch is about 30 MiB")
    _scan(raw)
    try:
        batch = _BatchUnpickler(io.BytesIO(raw)).load()
    except BatchRefused:
        raise
    except Exception as e:  # UnpicklingError, EOFError, and what a misused opcode raises (TypeError, ...)
        raise BatchRefused(f"it cannot be unpickled ({type(e).__name__}: {str(e)[:120]})") from None
    return _check(batch)
