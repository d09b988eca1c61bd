"""`hpcgan report`: one static HTML page per run or sweep, for people.

Reading: collect.py (a run's logs into a RunData), environment.py (hosts, versions), dataset.py
(the shard set: counts, class mix, a few real images), files.py (config, logs, checkpoints).
Pictures: figures.py (matplotlib curves, Agg), images.py (grid thumbnails, the real-image grid).
Views, which decide what each section says: run_view.py with samples_view.py, data_view.py,
run_sections.py and checks.py; sweep_view.py. Markup: render.py fills templates/ (Jinja2, with
autoescaping) and inlines static/ (stylesheet, sort script). build.py writes the folders, and
tensorboard.py the optional TensorBoard scalars.

Nothing here imports torch (except `--tensorboard`, whose SummaryWriter lives in torch), so a
report of a sweep on a login node takes seconds.
"""
