"""Zero-cost proxy evaluators for nas-core: rank architectures without training.

Installed, the plugin ``zero_cost`` registers the evaluators ``naswot``, ``synflow`` and
``zen-score``; pick one in a run config (``evaluator: {name: naswot}``) or fuse it with the
supernet's accuracy (built-in ``rank-fusion``). See README.md.
"""

__version__ = "0.1.0"
