"""Semantic layouts: class spaces, one-hot maps of present classes, instance edges, FDS."""
