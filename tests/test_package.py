"""The top-level package: every exported name is listed by dir() and resolves; stale numba caches
are dropped."""

from __future__ import annotations

import json
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
