"""Run the benchmarks: `python -m bench [preprocess train mmcl embed umap metrics app attention scale soak acdc_init] [--options]`."""
from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("preprocess", "train", "mmcl", "embed", "umap", "metrics", "app", "attention", "scale", "soak",
              "acdc_init")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # leading benchmark names, then options forwarded to each benchmark's main()
    names = []
    while argv and argv[0] in BENCHMARKS:
        names.append(argv.pop(0))
    names = names or list(BENCHMARKS)
    rest = argv
    failed = []
    for name in names:
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
