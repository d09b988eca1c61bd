"""Benchmarks: `python -m hpcgan.bench NAME`, each ending with one JSON line on stdout."""
