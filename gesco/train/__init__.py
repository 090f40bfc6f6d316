"""Training: the diffusion model (:mod:`gesco.train.diffusion`), shared utilities."""
