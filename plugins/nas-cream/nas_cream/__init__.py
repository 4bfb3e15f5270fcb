"""Cream of the Crop (NeurIPS 2020) for nas_core: prioritized paths distil into the supernet.

Components (plugin ``cream``): sampler ``cream`` (uniform / categorical prior / board
frequency), teacher ``cream`` (prioritized path board + meta-matching network), regularizer
``cream`` (0.5 [rho KD + (2 - rho) CE]), searcher ``cream-board`` (top board entry within the
FLOPs interval), search space ``cream-imagenet``, config section ``cream`` (warm-up).
"""

__version__ = "0.1.0"
