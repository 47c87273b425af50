"""Benchmarks: `./run bench [name ...]` (or `python -m bench`). Each prints ratios measured side by side."""
