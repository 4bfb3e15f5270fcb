"""Zero-cost proxy evaluators for nas-core: rank architectures from one batch, without training.

Installed, the plugin ``zero_cost`` registers the evaluators ``synflow``, ``grad-norm``,
``snip`` and ``naswot``; pick one in a run config (``evaluator: {name: synflow}``) and any
searcher uses it. See README.md.
"""

__version__ = "0.1.0"
