"""Pi-NAS for nas_core: unsupervised supernet training by cross-path learning with a
non-trivial mean teacher (EMA + negative queue), kNN / linear-probe evaluators, and the Pi-NAS
ResNeSt-like search space with its published architectures."""

__version__ = "0.1.0"
