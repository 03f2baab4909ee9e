"""The top-level package: every exported name is listed by dir() and resolves; stale numba caches
are dropped; the kernels' compiled code does not depend on who compiled them first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import tvbeta


def test_dir_lists_the_lazily_loaded_estimators_before_their_first_use():
    """PEP 562: `__dir__` must list what `__getattr__` provides, so that tab completion and
    dir() show fit_mle, fit_bayes and compare_methods (the README's entry points). A fresh
    interpreter, so that no earlier test has loaded them; listing them imports no PyMC."""
    code = ("import sys, json, tvbeta; "
            "print(json.dumps([dir(tvbeta), 'pymc' in sys.modules]))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    names, pymc_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    for name in ("fit_mle", "fit_bayes", "compare_methods", "crosscheck_statsmodels"):
        assert name in names
    assert not pymc_loaded


def test_every_name_in_all_is_listed_and_importable():
    names = set(dir(tvbeta))
    for name in tvbeta.__all__:
        assert name in names
        assert getattr(tvbeta, name) is not None


def test_every_module_with_cached_numba_functions_is_watched_for_stale_caches():
    """`tvbeta._numba_cache.SOURCES` must list each file that asks numba for a cache."""
    from pathlib import Path

    from tvbeta._numba_cache import SOURCES

    root = Path(tvbeta.__file__).parent
    cached = {str(p.relative_to(root)) for p in root.rglob("*.py")
              if "cache=True" in p.read_text(encoding="utf-8") and p.name != "_numba_cache.py"}
    assert cached == set(SOURCES)


def test_numba_caches_are_dropped_when_a_kernel_source_changes_and_kept_otherwise(tmp_path):
    """A copy of the watched sources with a cache file beside each: the first call stamps the
    digest (and drops what was there), an unchanged tree keeps its caches, an edited callee
    (steps.py) drops the caches of every watched file, its callers' too."""
    import shutil
    from pathlib import Path

    from tvbeta._numba_cache import SOURCES, drop_stale_caches

    root = Path(tvbeta.__file__).parent

    def caches() -> list[Path]:
        made = []
        for name in SOURCES:
            source = Path(name)
            cache = tmp_path / source.parent / "__pycache__" / f"{source.stem}.f-1.py312.nbi"
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(b"old")
            made.append(cache)
        return made

    for name in SOURCES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, tmp_path / name)
    first = caches()
    assert drop_stale_caches(tmp_path) and not any(p.exists() for p in first)
    kept = caches()
    assert not drop_stale_caches(tmp_path) and all(p.exists() for p in kept)
    steps = tmp_path / "kalman" / "steps.py"
    steps.write_text(steps.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert drop_stale_caches(tmp_path) and not any(p.exists() for p in kept)


def test_every_numba_function_fixes_fastmath_off_so_no_caller_can_lend_it_its_flags():
    """Numba compiles a function that leaves ``fastmath`` unset with its caller's flags
    (`numba.core.cpu.CPUTargetOptions.finalize`, ``inherit_if_not_set("fastmath")``), and
    caches that code for every later caller. Each numba decorator in the package says
    ``fastmath=False``; the next test shows why."""
    import re
    from pathlib import Path

    root = Path(tvbeta.__file__).parent
    decorators = [(p.name, line.strip()) for p in root.rglob("*.py")
                  for line in p.read_text(encoding="utf-8").splitlines()
                  if re.match(r"\s*@(numba\.)?njit\b", line)]  # fmt: skip
    assert len(decorators) > 50
    assert [d for d in decorators if "fastmath=False" not in d[1]] == []


KERNEL_BITS = """
import json, sys
import numpy as np
if sys.argv[1] == "after a fast-math graph":
    # PyTensor's numba mode compiles with LLVM fast-math flags by default (as PyMC's
    # compile_logp does); the kernels are compiled, and cached, as this graph's callees
    import pytensor
    import pytensor.tensor as pt
    from tvbeta.estimate.bayes.op import ReversionLogpOp
    Q, phi = pt.dmatrix("Q"), pt.dvector("phi")
    ll = ReversionLogpOp(5)(Q, pt.constant(np.ones(1)), np.ones(40), np.ones((40, 5)), phi,
                            np.zeros(5), np.eye(5), 0)
    pytensor.function([Q, phi], [ll, *pytensor.grad(ll, [Q, phi])], mode="NUMBA")(
        np.eye(5) * 0.01, np.full(5, 0.9))
from tvbeta.kalman.collapsed import reversion_loglik_grad
rng = np.random.default_rng(0)
n, k = 300, 5
Z = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
y = Z @ np.full(k, 0.5) + rng.normal(size=n)
g = reversion_loglik_grad(y, Z, np.full(k, 0.97), np.diag(np.full(k, 0.01)), np.ones(1),
                          np.zeros(k), np.eye(k))
print(json.dumps([float(x).hex() for x in (g.value, *g.dQ.ravel(), *g.dphi)]))
"""


def test_the_kernels_give_the_same_bits_whatever_compiled_them_first(tmp_path):
    """The mean-reverting kernels' value and gradient (k = 5), bit for bit, in a process where
    they are compiled for a direct call and in one where a fast-math PyTensor graph compiled
    them first as its callees (each with empty numba and PyTensor caches). Before every
    decorator fixed ``fastmath=False`` the second got fused multiply-adds and gradients some
    ulps apart, and cached them for every later process: the same data then gave another
    mean-reverting MLE (NoDur: the intercept's drift variance 4% apart) depending on which
    process compiled first (2026-12-03)."""
    bits = []
    for order in ("direct", "after a fast-math graph"):
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / order / "numba"),
               "PYTENSOR_FLAGS": f"base_compiledir={tmp_path / order / 'pytensor'}"}  # fmt: skip
        out = subprocess.run([sys.executable, "-c", KERNEL_BITS, order], capture_output=True,
                             text=True, timeout=900, check=True, env=env)  # fmt: skip
        bits.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert bits[0] == bits[1]
