"""A run directory's layout and the readers that status, report, eval, tstr and memorization share.
Torch-free: `hpcgan status` and `hpcgan report` run on login nodes without importing torch."""
