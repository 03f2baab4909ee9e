"""Numba's on-disk caches of tvbeta's kernels, dropped when any compiled source changed.

Numba keys a function's cache by the file it is defined in only (its modification time and
size): "cache invalidation fails to recognize changes in symbols defined in a different file"
(numba's Notes on Caching, known limitations; numba/numba#8396 would extend it, unmerged). A
kernel compiles the functions it calls into itself, so after an edit of `tvbeta.kalman.steps`
the cached `filter.tape_kernel`, and after one of `tvbeta.kalman.collapsed` the Bayes Op's
`_reversion_logp`, would keep the old code until their own files change. A fresh clone has
no cache; a checkout updated in place does. `drop_stale_caches` runs when tvbeta is imported
(this module calls it, and `tvbeta` imports it first), before any kernel is compiled or read
from its cache: when the sources' digest differs from the one stamped beside the caches, every
cache of these files is deleted and numba compiles them again on first use. PyTensor's on-disk
cache of the compiled graphs (``~/.pytensor``, shared by every checkout) keys an Op by its class
and props only, so the Ops salt their keys with `sources_salt`, the same digest of the same
files: a graph compiled from other sources is never reused. Both halves are needed. Before
`drop_stale_caches` existed, an Op compiled right after an edit of the mean-reverting kernel
linked in the stale `_reversion_forward` (the Op's function then; op.py unchanged) and stored
that old kernel under the new sources' key; fits on that machine ran it for a day (found
2026-12-03: about 20% slower per value and gradient than a fresh compile, in one process). A
new salt retires such entries. With ``NUMBA_CACHE_DIR`` set, `drop_stale_caches` does nothing
and only the salt is left: after an edit, clear that folder.

The compiled code must not depend on who compiled it first either: numba compiles a function
that leaves ``fastmath`` unset with its caller's flags (``inherit_if_not_set("fastmath")`` in
`numba.core.cpu.CPUTargetOptions.finalize`) and caches that code for every later caller. A
tvbeta model compiled by PyTensor's numba mode with its default LLVM fast-math flags (PyMC's
``compile_logp``) compiled the mean-reverting kernel with fused multiply-adds and cached it,
and from then on the same seed gave another mean-reverting MLE and other draws. So every
numba decorator in the package sets ``fastmath=False`` (tests/test_package.py checks the
decorators, and that the kernels' bits do not depend on what compiled them first).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

#: Every module with numba ``cache=True`` functions, relative to the package
#: (tests/test_package.py checks that none is missing).
SOURCES = (
    "kalman/arrays.py", "kalman/collapsed.py", "kalman/filter.py", "kalman/gradient.py",
    "kalman/smoother.py", "kalman/steps.py", "estimate/bayes/index_op.py",
    "estimate/bayes/op.py", "estimate/bayes/sampler.py", "model/volatility.py",
)  # fmt: skip
STAMP = "kalman/__pycache__/tvbeta-numba-sources.sha256"


def sources_digest(root: Path = Path(__file__).parent) -> str:
    """Return the SHA-256 hex digest of `SOURCES` under ``root``, read in their listed order."""
    return hashlib.sha256(b"".join((root / name).read_bytes() for name in SOURCES)).hexdigest()


@functools.cache
def sources_salt() -> int:
    """Return the salt of the Ops' PyTensor cache keys: `sources_digest`'s first 48 bits.

    Every numba source is in it, since an Op's compiled graph holds the code of every kernel
    it calls (e.g. `kalman.arrays.burn_row` inside the mean-reverting filter). Read once per
    process: `op` and `index_op` share it.
    """
    return int(sources_digest()[:12], 16)


def drop_stale_caches(root: Path = Path(__file__).parent) -> bool:
    """Delete the numba caches of `SOURCES` under ``root`` when the sources changed.

    Returns True when caches were dropped (or there were none yet and the stamp was written).
    Nothing happens with ``NUMBA_CACHE_DIR`` set (the caches then live there, not beside the
    sources) or where the package's folders are read-only (an installed copy, whose caches were
    built from its own sources).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return False
    files = [root / name for name in SOURCES]
    digest = sources_digest(root)
    stamp = root / STAMP
    try:
        if stamp.read_text(encoding="ascii") == digest:
            return False
    except OSError:  # no stamp yet
        pass
    try:
        for f in files:
            for cached in (f.parent / "__pycache__").glob(f"{f.stem}.*.nb[ic]"):
                cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(digest, encoding="ascii")
        tmp.replace(stamp)  # atomic: another process reads the old stamp or the new one
    except OSError:
        return False
    return True


drop_stale_caches()
