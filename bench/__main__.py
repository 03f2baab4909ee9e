"""Run benchmarks: `python -m bench [kernels|grid|mle|bayes|menu|funds|all] [options]`.

Each name is a module `bench/<name>.py` with `main(argv) -> int`; options after the name go to
it (e.g. `python -m bench kernels --json out.json`). Under `all`, modules not written yet are
skipped with a note, and `--json X.json` becomes `X.<name>.json` for each module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path

MODULES = ("kernels", "grid", "mle", "bayes", "menu", "funds")


def available(name: str) -> bool:
    """True when bench/<name>.py exists."""
    return importlib.util.find_spec(f"bench.{name}") is not None


def _per_module_json(argv: list[str], name: str) -> list[str]:
    """Rewrite `--json X.json` / `--json=X.json` to `X.<name>.json` (for `all`)."""

    def rename(path: str) -> str:
        p = Path(path)
        return str(p.with_name(f"{p.stem}.{name}{p.suffix or '.json'}"))

    out: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--json":
            out += [arg, rename(next(it, "bench.json"))]
        elif arg.startswith("--json="):
            out.append("--json=" + rename(arg.split("=", 1)[1]))
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the benchmark modules; returns the worst exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    which = argv.pop(0) if argv and not argv[0].startswith("-") else "all"
    if which not in (*MODULES, "all"):
        print(f"unknown benchmark {which!r}; choose from {', '.join(MODULES)} or all")
        return 2
    names = MODULES if which == "all" else (which,)
    status = 0
    for name in names:
        if not available(name):
            print(f"[bench] {name}: skipped, bench/{name}.py does not exist yet\n")
            status = max(status, 0 if which == "all" else 1)
            continue
        args = _per_module_json(argv, name) if which == "all" else argv
        try:
            rc = importlib.import_module(f"bench.{name}").main(args)
        except SystemExit as exc:  # argparse errors and --help
            rc = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            if which != "all":
                raise
            traceback.print_exc()
            rc = 1
        status = max(status, int(rc or 0))
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
