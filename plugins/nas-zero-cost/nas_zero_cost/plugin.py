"""The ``zero_cost`` plugin: one evaluator per proxy, usable by any searcher or as a member of
the built-in ``rank-fusion`` evaluator.

An evaluator scores each architecture on its path of the supernet in place (``supernet.path``: no
copy); the proxies leave weights, BN buffers and modes as they were, so it never changes the
supernet. ``weights: init`` (default) scores a freshly initialised copy of the space --
training-free, how the proxies are meant to be used: one seeded initialisation of the whole
space, so every architecture is scored with the same weights for the layers it shares with
another; ``weights: supernet`` scores the trained supernet's inherited weights instead. So an
evaluator reads the supernet's trained weights (``reads_supernet``) only with ``weights:
supernet``; with ``init``, ``nas run`` trains no supernet for it.

Each architecture is scored with torch's generators seeded from the evaluator's seed alone, so
a score depends on the architecture only -- not on the other architectures of the call, their
order, or which torchrun process scores it (the evaluator contract).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
from pydantic import Field

from nas_core.api import Arch, ComponentContext, Evaluator, Normalizer, Registry, Section, Supernet, hookimpl
from nas_zero_cost.proxies import gaussian_init, naswot, synflow, zen_score

NAS_PLUGIN_API = "1.2"  # Supernet.path


class ZeroCostOptions(Section):
    weights: Literal["init", "supernet"] = Field("init", description="init: a seeded fresh initialisation (training-free); supernet: inherited weights")
    batch_size: int = Field(64, gt=1, description="images in the scoring batch (synflow and zen-score use only their shape)")
    seed: int | None = Field(None, description="seed of the initialisation, the batch and any noise (default: the run's seed)")


class ZenOptions(ZeroCostOptions):
    alpha: float = Field(0.01, gt=0, description="size of the Gaussian input perturbation (the paper's alpha)")
    repeats: int = Field(1, gt=0, description="Gaussian batches averaged per architecture")


class ZeroCostEvaluator(Evaluator):
    """Base: scores ``proxy(path of the architecture, images, labels)`` for each architecture."""

    proxy: Callable[..., float]

    def __init__(self, context: ComponentContext, options: ZeroCostOptions):
        self.context = context
        self.options = options
        self.weights = options.weights
        self.batch_size = options.batch_size
        self.seed = context.seed if options.seed is None else options.seed
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._init: Supernet | None = None

    @property
    def reads_supernet(self) -> bool:
        """Only ``weights: supernet`` scores the trained weights; ``init`` is training-free."""
        return self.weights == "supernet"

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One seeded batch of normalised training images and labels, on the run's device."""
        if self._batch is None:
            data, device = self.context.data, self.context.device
            order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(self.seed))[: self.batch_size]
            images = Normalizer(data.mean, data.std, device)(data.train.images[order].to(device))
            self._batch = (images, data.train.labels[order].to(device))
        return self._batch

    def initialise(self, supernet: Supernet) -> None:
        """How ``weights: init`` initialises the space (default: the space's own initialisation)."""

    def source(self, supernet: Supernet | None) -> Supernet:
        """The supernet whose paths are scored: the given one, or one seeded fresh initialisation."""
        if self.weights == "supernet":
            if supernet is None:
                raise ValueError(f"{self.metric_name}: weights 'supernet' needs a trained supernet")
            return supernet
        if self._init is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                init = self.context.space.build_supernet().to(self.context.device)
                self.initialise(init)
            self._init = init
        return self._init

    def score(self, network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        return type(self).proxy(network, images, labels)

    def evaluate(self, supernet: Supernet | None, archs: Sequence[Arch]) -> list[float]:
        images, labels = self.batch()
        source = self.source(supernet)
        scores = []
        for arch in archs:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                scores.append(self.score(source.path(arch), images, labels))
        return scores


class NaswotEvaluator(ZeroCostEvaluator):
    """NASWOT: log|det K_H| of the binary activation-code kernel of one batch (Mellor et al. 2021)."""

    metric_name = "naswot"
    proxy = staticmethod(naswot)


class SynflowEvaluator(ZeroCostEvaluator):
    """Synflow: log sum(theta * dR/dtheta) with |theta| weights and an all-ones input (data-free)."""

    metric_name = "synflow"
    proxy = staticmethod(synflow)


class ZenScoreEvaluator(ZeroCostEvaluator):
    """Zen-score: log of the Gaussian-perturbation feature-map difference plus the BN variance
    correction (Lin et al. 2021), on N(0, 1) weights (``weights: init``) and Gaussian inputs."""

    metric_name = "zen_score"

    def __init__(self, context: ComponentContext, options: ZenOptions):
        super().__init__(context, options)
        self.alpha, self.repeats = options.alpha, options.repeats

    def initialise(self, supernet: Supernet) -> None:
        gaussian_init(supernet)

    def score(self, network: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        return zen_score(network, images, labels, alpha=self.alpha, repeats=self.repeats)


EVALUATORS = {"naswot": NaswotEvaluator, "synflow": SynflowEvaluator, "zen-score": ZenScoreEvaluator}
OPTIONS = {"naswot": ZeroCostOptions, "synflow": ZeroCostOptions, "zen-score": ZenOptions}


@hookimpl
def nas_register_evaluators(registry: Registry) -> None:
    for name, factory in EVALUATORS.items():
        registry.register(name, factory, options=OPTIONS[name])
