"""Generators, discriminators, losses and augmentations. Plain nn.Modules: nothing here knows about
ranks or torch.distributed."""
