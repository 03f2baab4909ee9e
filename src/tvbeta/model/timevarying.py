"""A model matrix that is declared constant or per time step, never guessed from its shape.

``TimeVarying`` holds T, Q or R of a :class:`~tvbeta.model.spec.KalmanSpec`: ``per_time=False``
means one value for every step (a (k, k) matrix, or a scalar for R); ``per_time=True`` means
one value per row of the data the setter saw ((n, k, k), or (n,) for R). The kernels take a
leading time axis of length 1 or n; :meth:`TimeVarying.kernel` produces it and checks n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


class SpecError(ValueError):
    """A spec that is inconsistent, or used with data it does not fit; the message says why."""


def frozen_array(x: npt.ArrayLike, name: str) -> np.ndarray:
    """Return a read-only float64 copy of ``x``, refusing non-finite values (named ``name``)."""
    arr = np.array(x, dtype=np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{name} has NaN or inf values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class TimeVarying:
    """A constant or per-time-step array, with the choice stated explicitly.

    Attributes
    ----------
    values : np.ndarray
        Constant: the value itself, (k, k) for T and Q, () for R. Per time: one value per
        row of the data the setter saw, (n, k, k) or (n,). Read-only float64 copy.
    per_time : bool
        Whether ``values`` has a leading time axis.
    """

    values: np.ndarray
    per_time: bool

    def __post_init__(self) -> None:
        """Store ``values`` as a read-only float64 copy.

        Raises
        ------
        TypeError
            ``per_time`` is not a bool.
        SpecError
            Per-time values without a leading time axis of length >= 1.
        """
        if not isinstance(self.per_time, bool):
            raise TypeError(f"per_time must be a bool, got {self.per_time!r}")
        arr = frozen_array(self.values, "values")
        if self.per_time and (arr.ndim == 0 or arr.shape[0] == 0):
            raise SpecError(f"per-time values need a leading time axis, got shape {arr.shape}")
        object.__setattr__(self, "values", arr)

    @classmethod
    def constant(cls, values: npt.ArrayLike) -> TimeVarying:
        """Return the same value at every step."""
        return cls(np.asarray(values, dtype=np.float64), per_time=False)

    @classmethod
    def per_step(cls, values: npt.ArrayLike) -> TimeVarying:
        """One value per time step (leading axis = time)."""
        return cls(np.asarray(values, dtype=np.float64), per_time=True)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of the value at one step: (k, k) or ()."""
        return self.values.shape[1:] if self.per_time else self.values.shape

    @property
    def n_time(self) -> int | None:
        """Number of steps of a per-time array, None for a constant."""
        return self.values.shape[0] if self.per_time else None

    def steps(self) -> np.ndarray:
        """All values with a leading time axis of length 1 (constant) or n: (1 | n, ...)."""
        return self.values if self.per_time else self.values[None]

    def kernel(self, n: int, name: str) -> np.ndarray:
        """Return the kernel array (1 | n, ...) for data with ``n`` rows.

        Raises
        ------
        SpecError
            A per-time array whose number of steps is not ``n``.
        """
        if self.per_time and self.values.shape[0] != n:
            raise SpecError(f"{name} was set per time step from data with {self.values.shape[0]} "
                            f"rows, but the data here have {n} rows: call the setter on the same "
                            "DataFrame that you run the model on")  # fmt: skip
        return self.steps()

    def __eq__(self, other: object) -> bool:
        """Compare ``per_time`` and the values exactly (``np.array_equal``)."""
        if not isinstance(other, TimeVarying):
            return NotImplemented
        return self.per_time == other.per_time and np.array_equal(self.values, other.values)

    __hash__ = None  # type: ignore[assignment]  # mutable-looking contents: compare, don't hash

    def __repr__(self) -> str:
        """Summarise the values: a constant's value or matrix, or a per-time shape and range."""
        if self.values.size == 0:  # no state (K = 0): nothing to summarise
            return f"{'per-time' if self.per_time else 'constant'} empty {self.values.shape}"
        if not self.per_time:
            v = self.values
            return f"constant {repr(float(v)) if v.ndim == 0 else _matrix_summary(v)}"
        lo, hi = float(self.values.min()), float(self.values.max())
        return f"per-time {self.values.shape}, values in [{lo:.6g}, {hi:.6g}]"

    def to_dict(self) -> dict[str, Any]:
        """``{"per_time": bool, "values": float | nested lists}`` (exact: Python floats)."""
        return {"per_time": self.per_time, "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimeVarying:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["values"], dtype=np.float64), per_time=bool(d["per_time"]))


def _matrix_summary(m: np.ndarray) -> str:
    """'identity (2x2)', '1e-04 * I (2x2)', 'diag[...] (2x2)' or 'full (2x2)'."""
    d, size = np.diag(m), f"({m.shape[0]}x{m.shape[0]})"
    if np.any(m - np.diag(d) != 0.0):
        return f"full {size}"
    if np.all(d == d[0]):
        return f"identity {size}" if d[0] == 1.0 else f"{d[0]:.6g} * I {size}"
    return "diag[" + ", ".join(f"{x:.6g}" for x in d) + f"] {size}"
