"""The top-level package: every exported name is listed by dir() and resolves."""

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
