"""`hpcgan report`: one static HTML page per run or sweep, for people.

collect.py reads a run's files into a RunData, environment.py finds the versions, figures.py
draws the curves (matplotlib, Agg), images.py makes sample-grid thumbnails, page.py writes the
HTML, tensorboard.py the optional TensorBoard scalars, and build.py puts them together.

Nothing here imports torch (except `--tensorboard`, whose SummaryWriter lives in torch), so a
report of a sweep on a login node takes seconds.
"""
