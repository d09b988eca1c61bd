"""What is done with a trained run: loading its generator, exporting samples, evaluating its
checkpoints, tstr and the memorisation check. Above `train` (it reads checkpoints and configs), below
`launch` and `cli`."""
