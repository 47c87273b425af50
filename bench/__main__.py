"""Run the benchmarks: `python -m bench [preprocess train embed metrics app ...]`."""
from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("preprocess", "train", "embed", "metrics", "app")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    rest = [a for a in argv if a.startswith("-")]
    failed = []
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        print(f"\n=== bench/{name}.py ===", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.main(rest)
        except Exception as exc:  # one broken benchmark does not hide the others
            failed.append(name)
            print(f"benchmark {name} failed: {exc!r}", file=sys.stderr)
        print(f"(bench/{name} took {time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
