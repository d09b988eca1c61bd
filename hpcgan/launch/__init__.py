"""Launching training on SLURM (through submitit) or locally: jobs, sweeps, holds and status."""
