"""The one front door: every public call is checked and normalised here, once.

Whatever the backend, a call first goes through these checks, so bad input gets
the same documented error everywhere and no kernel ever sees unchecked input.

The documented errors:

* ``TypeError`` -- logits whose dtype is not float16, bfloat16
  (``ml_dtypes.bfloat16``), float32 or float64 (ints, bool, complex, object,
  strings, longdouble); dense or sigmoid labels that are not real numbers (bool,
  complex, object, strings); sparse labels that are not
  integers; an ``axis`` that is not an integer (a bool, ``np.bool_``, float,
  ``None``, string or array is refused; Python and NumPy integers of any size
  are accepted).
* ``ValueError`` -- scalar (rank-0) logits; logits or labels given as a ragged
  nested sequence; an ``axis`` outside ``[-ndim, ndim)`` (including integers
  too large for int64, such as ``2**63`` or ``-2**70``); a class axis of
  length 0 (a batch of length 0 is fine and gives an empty result); dense
  labels that do not broadcast to the logits' shape; sigmoid labels whose
  shape differs from the logits'; sparse labels whose shape is not
  ``logits.shape[:-1]``; a sparse label outside ``[0, num_classes)``, whatever
  its integer dtype (``-1``, ``num_classes``, ``2**31``, ``2**63 - 1`` all
  are refused before any cast could wrap them), unless it is ``ignore_index``.
* The loss options (``label_smoothing``, ``ignore_index``, ``class_weights``,
  ``reduction``, ``z_loss``, ``pos_weight``) are checked in ``impls._options``,
  with its ``TypeError`` and ``ValueError``.

Outputs (``out=``; ``loss_out=`` and ``grad_out=`` of the fused functions), in
NumPy's convention: an ``ndarray`` of exactly the result's shape and dtype (the
logits' dtype), C-contiguous and writable, which receives the result and is
returned. ``TypeError`` for anything but an ndarray or for another dtype;
``ValueError`` for another shape, a strided or read-only array, or an output
that may share memory with an input or with the other output
(``np.may_share_memory``): in-place calls such as ``softmax(x, out=x)`` are
refused, not computed, since a kernel that reads a row after writing part of
it would give wrong results.

Logits in non-native byte order (e.g. ``>f4`` on x86) are accepted and
converted to the native dtype (a copy); results have the native dtype.

The canonical form handed to a backend (see ``Rows``): logits as a C-contiguous
``(rows, classes)`` array with the class axis last, in the compute dtype
(float16 and bfloat16 are computed in float32, every result is cast back to
the logits' dtype), or as float16 or bfloat16 to a backend that declares it
takes them (``dtypes``) and computes them itself; dense labels as an array of
the same shape in the compute dtype; sparse labels as
an int64 vector whose every value is in ``[0, classes)``. Inputs are never
written to: a backend gets either the caller's read-only view or a copy.
"""

from __future__ import annotations

from typing import NamedTuple

import ml_dtypes
import numpy as np

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
#: Computed in float32, results cast back.
HALF_DTYPES = (np.dtype(np.float16), BFLOAT16)
FLOAT_DTYPES = HALF_DTYPES + (np.dtype(np.float32), np.dtype(np.float64))


#: The dtype a backend computes in, by logits dtype: half precision is promoted to float32.
_COMPUTE = {np.dtype(np.float16): np.dtype(np.float32),
            BFLOAT16: np.dtype(np.float32),
            np.dtype(np.float32): np.dtype(np.float32),
            np.dtype(np.float64): np.dtype(np.float64)}


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a backend computes in: float16 and bfloat16 are promoted to float32."""
    compute = _COMPUTE.get(dtype)  # an np.dtype, on every call's path: no np.dtype() (0.15 us)
    return compute if compute is not None else _COMPUTE[np.dtype(dtype)]


def canonical_dtype(dtype: np.dtype, takes=()) -> np.dtype:
    """The dtype a backend taking the dtypes ``takes`` receives logits of ``dtype`` in:
    half precision as itself where it takes it, else its compute dtype."""
    return dtype if dtype in takes else _COMPUTE[dtype]


def as_dtype(a, dtype: np.dtype, out: np.ndarray | None = None) -> np.ndarray:
    """Array ``a`` as a C-contiguous array of ``dtype`` (``a`` itself if it is one already),
    or written into ``out`` (C-contiguous, ``dtype``, ``a``'s shape) where given.

    Half precision <-> float32 goes through ``impls._half``: NumPy's cast to
    float16 is about 10x slower for results that are subnormal in float16,
    which most of a softmax's probabilities are. Imported on first use, so a
    caller who never passes half precision does not import Numba here.
    """
    a = np.asarray(a)
    if out is None:
        if a.dtype == dtype and a.flags.c_contiguous:
            return a
        if a.dtype not in HALF_DTYPES and dtype not in HALF_DTYPES:
            return np.ascontiguousarray(a, dtype=dtype)
        out = np.empty(a.shape, dtype)
    if a.dtype in HALF_DTYPES and dtype == np.float32 or a.dtype == np.float32 and dtype in HALF_DTYPES:
        from . import _half
        return _half.convert(a, out)
    np.copyto(out, a, casting="unsafe")
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view, so no backend can modify the caller's data."""
    view = a.view()
    view.setflags(write=False)  # half the cost of going through ``view.flags``
    return view


def _asarray(a, what: str) -> np.ndarray:
    """``np.asarray`` with NumPy's error for a ragged sequence in the front door's words."""
    try:
        return np.asarray(a)
    except ValueError as exc:
        raise ValueError(f"Expected {what} as a rectangular array, got a ragged sequence ({exc})") from None


def _got(given, array: np.ndarray) -> str:
    """What an error message says it got: ``None`` as itself (not NumPy's ``object``), else the dtype."""
    return "None" if given is None else str(array.dtype)


def check_out(out, name: str, shape: tuple, dtype: np.dtype, inputs: tuple) -> np.ndarray | None:
    """``out`` (None, or an output array for a result of ``shape`` and ``dtype``), checked.

    ``inputs``: ``(what, array)`` pairs ``out`` must not share memory with (the
    caller's arguments, the other output); anything that is not an ndarray
    holds no memory of the caller's. The errors are those of the module docstring.
    """
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"Expected {name} as a NumPy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"Expected {name} of shape {shape}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"Expected {name} of dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"Expected a C-contiguous {name}, got a strided array")
    if not out.flags.writeable:
        raise ValueError(f"Expected a writable {name}, got a read-only array")
    for what, given in inputs:
        if isinstance(given, np.ndarray) and np.may_share_memory(out, given):
            raise ValueError(f"{name} may share memory with {what}; in-place calls are not supported")
    return out


def check_logits(logits, name: str = "logits") -> np.ndarray:
    """Logits (or another floating input, ``name`` in the messages: the fused linear + cross-entropy's
    ``hidden``, ``weight``, ``bias``) as an ndarray of rank >= 1 and a floating dtype in native byte order."""
    given, logits = logits, _asarray(logits, name)
    if logits.dtype.kind == "f" and not logits.dtype.isnative:
        logits = logits.astype(logits.dtype.newbyteorder("="))
    if logits.dtype not in FLOAT_DTYPES:
        hint = (f"; cast integer {name} to float first, e.g. np.asarray({name}, np.float32) "
                "(tf.nn refuses them too)") if logits.dtype.kind in "iu" else ""
        raise TypeError(
            f"Expected {name} of dtype float16, bfloat16, float32 or float64, got {_got(given, logits)}{hint}"
        )
    if logits.ndim == 0:
        raise ValueError(f"Expected {name} of rank >= 1, got a scalar")
    return logits


def check_axis(axis, ndim: int) -> int:
    """A non-negative axis in ``[0, ndim)``; bools and non-integers are refused."""
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, first (not a bool: its type is bool)
        return axis % ndim
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"Expected an integer axis, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for logits of rank {ndim}")
    return int(axis) % ndim


def _check_real_labels(labels) -> np.ndarray:
    given, labels = labels, _asarray(labels, "labels")
    if labels.dtype.kind not in "fiu" and labels.dtype != BFLOAT16:
        raise TypeError(f"Expected real (float or integer) labels, got {_got(given, labels)}")
    return labels


def _move(a: np.ndarray, source: int, destination: int) -> np.ndarray:
    """``np.moveaxis``, skipped when the axis stays where it is (it costs 4 us a call)."""
    if source % a.ndim == destination % a.ndim:
        return a
    return np.moveaxis(a, source, destination)


def _reshaped(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``a.reshape(shape)``, skipped when ``a`` has that shape (a reshape costs 0.3 us)."""
    return a if a.shape == shape else a.reshape(shape)


class Rows(NamedTuple):
    """Logits reshaped to ``(rows, classes)`` with the class axis last.

    ``restore`` turns a per-row result back into the batch shape, and
    ``restore_full`` turns a ``(rows, classes)`` result back into the logits'
    original shape and axis order; both cast to the logits' dtype, into the
    caller's ``out`` where given. ``direct`` and ``direct_full`` give the
    views of ``out`` a backend can write its results into.
    """

    logits: np.ndarray
    shape: tuple  # the logits' shape with the class axis moved last
    axis: int
    dtype: np.dtype

    @classmethod
    def from_logits(cls, logits: np.ndarray, axis: int = -1, takes=()) -> "Rows":
        """``takes``: the dtypes the backend takes (``canonical_dtype``)."""
        axis = check_axis(axis, logits.ndim)
        if logits.shape[axis] == 0:
            raise ValueError(
                f"Expected at least one class along axis {axis}, got logits of shape {logits.shape}"
            )
        moved = _move(logits, axis, -1)
        rows = moved if moved.ndim == 2 else moved.reshape(-1, moved.shape[-1])  # as ``_reshaped``
        rows = as_dtype(rows, canonical_dtype(logits.dtype, takes))
        return cls(_readonly(rows), moved.shape, axis, logits.dtype)

    @property
    def full_shape(self) -> tuple:
        """The logits' shape, the class axis where the caller has it."""
        batch = self.shape[:-1]
        return batch[:self.axis] + self.shape[-1:] + batch[self.axis:]

    def to_rows(self, labels: np.ndarray) -> np.ndarray:
        """Dense labels (already of the logits' shape) in the same canonical form, of the compute dtype."""
        moved = _move(labels, self.axis, -1).reshape(self.logits.shape)
        return _readonly(as_dtype(moved, compute_dtype(self.dtype)))

    def direct(self, out: np.ndarray | None) -> np.ndarray | None:
        """A checked per-row ``out`` as the ``(rows,)`` vector a backend writes, or None
        where it cannot (another dtype than the compute dtype)."""
        return out.reshape(-1) if out is not None and out.dtype == self.logits.dtype else None

    def direct_full(self, out: np.ndarray | None) -> np.ndarray | None:
        """A checked ``out`` of the logits' shape as the ``(rows, classes)`` array a backend
        writes, or None where it cannot (the compute dtype, the class axis last)."""
        if out is None or out.dtype != self.logits.dtype or self.axis != len(self.shape) - 1:
            return None
        return out.reshape(self.logits.shape)

    def restore(self, per_row: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return _reshaped(as_dtype(per_row, self.dtype), self.shape[:-1])
        return deliver(per_row, out)

    def restore_full(self, full: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return _move(_reshaped(as_dtype(full, self.dtype), self.shape), -1, self.axis)
        if np.may_share_memory(full, out):  # the backend wrote it there
            return out
        target = _move(out, self.axis, -1)
        if target.flags.c_contiguous:
            as_dtype(full, self.dtype, out=target.reshape(full.shape))
        else:
            np.copyto(target, as_dtype(full, self.dtype).reshape(self.shape))
        return out


def deliver(result: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out`` holding ``result`` (of the same size, in the compute dtype), converted to
    ``out``'s dtype, unless the backend wrote it there already."""
    if not np.may_share_memory(result, out):
        as_dtype(result.reshape(-1), out.dtype, out=out.reshape(-1))
    return out


def dense_labels(labels, rows: Rows, logits_shape: tuple) -> np.ndarray:
    """Dense labels broadcast to the logits' shape, in canonical row form."""
    labels = _check_real_labels(labels)
    try:
        if labels.shape != logits_shape:  # broadcast_to costs 3 us, even for nothing
            labels = np.broadcast_to(labels, logits_shape)
    except ValueError:
        raise ValueError(
            f"labels of shape {labels.shape} do not broadcast to logits of shape {logits_shape}"
        ) from None
    return rows.to_rows(labels)


#: The unsigned integer dtype of each native integer dtype's size.
_UNSIGNED = {np.dtype(f"{kind}{size}"): np.dtype(f"u{size}") for kind in "iu" for size in (1, 2, 4, 8)}


def _unsigned(dtype: np.dtype) -> np.dtype:
    """The unsigned integer dtype of ``dtype``'s size and byte order."""
    return _UNSIGNED[dtype] if dtype in _UNSIGNED else np.dtype(dtype.str.replace("i", "u"))


#: Label vectors up to this size are checked in Python: inside a call, a NumPy
#: reduction costs 5-10 us of set-up, more than the kernel of a 1x1000 loss.
FEW_LABELS = 16


def _out_of_range(labels: np.ndarray, num_classes: int):
    """The first of the 1-D ``labels`` outside ``[0, num_classes)``, or None.

    Checked before any cast could wrap a huge value: as Python integers for a
    few labels, else in one comparison of the labels viewed as unsigned
    integers of the same size, where negative labels are larger than any
    class count.
    """
    if labels.size <= FEW_LABELS:
        values = labels.tolist()
        if not values or min(values) >= 0 and max(values) < num_classes:
            return None
        return next(value for value in values if not 0 <= value < num_classes)
    unsigned = labels.view(_unsigned(labels.dtype))
    if unsigned.max() < num_classes:
        return None
    return labels[int(np.argmax(unsigned >= num_classes))]


def sparse_labels(labels, rows: Rows, ignore_index: int | None = None) -> np.ndarray:
    """Integer class indices of shape ``logits.shape[:-1]``, range-checked, as int64.

    Labels equal to ``ignore_index`` (an int64, ``impls._options``) are exempt
    from the range check and kept as they are.
    """
    given, labels = labels, _asarray(labels, "labels")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"Expected integer labels, got {_got(given, labels)}")
    batch_shape = rows.shape[:-1]
    if labels.shape != batch_shape:
        raise ValueError(
            f"Expected labels of shape {batch_shape} (logits.shape[:-1]), got {labels.shape}"
        )
    num_classes, flat = rows.shape[-1], labels if labels.ndim == 1 else labels.reshape(-1)
    value = _out_of_range(flat if ignore_index is None else flat[flat != ignore_index], num_classes)
    if value is not None:
        raise ValueError(
            f"Received a label value of {value} which is outside the valid range of [0, {num_classes})"
        )
    return _readonly(np.ascontiguousarray(flat, dtype=np.int64))


def sigmoid_inputs(labels, logits, takes=()) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """Elementwise labels (of the compute dtype) and logits (``canonical_dtype``) flattened to 1-D."""
    logits = check_logits(logits)
    labels = _check_real_labels(labels)
    if labels.shape != logits.shape:
        raise ValueError(
            f"Expected labels of the logits' shape {logits.shape}, got {labels.shape}"
        )
    dtypes = (compute_dtype(logits.dtype), canonical_dtype(logits.dtype, takes))
    flat = [_readonly(as_dtype(a.reshape(-1), dtype)) for a, dtype in zip((labels, logits), dtypes)]
    return flat[0], flat[1], logits.dtype
