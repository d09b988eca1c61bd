"""hpcgan: train GANs on chest X-rays across SLURM clusters."""

__version__ = "0.1.0"
