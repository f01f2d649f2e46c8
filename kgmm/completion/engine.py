"""Scoring one batch of products: values for missing attributes, and suspect catalog values.

:class:`Completer` holds the model and the tables of one (aligned) snapshot. For a batch
of products it

1. encodes each product with every fact the store knows, and for each attribute that
   applies to its category and that it lacks (:class:`Applicability`) ranks all values of
   the attribute, keeping the ``top_k`` with their calibrated probabilities;
2. for each catalog attribute it has, scores its catalog values as if held out (the
   attribute's facts hidden, the value out of the category prior; :meth:`Completer.checks`)
   and flags a catalog value the detector learnt from planted errors finds probably wrong
   (:mod:`.detector`: ``P(wrong)`` at least ``flag_min`` with ``error_rate`` of the catalog
   assumed wrong).

Every random choice (the neighbour sample) draws from a generator seeded by
(seed, first product, round), so the same model, store and seed give the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from graph_store import Snapshot, SourceCode
from graph_store.models import FLAG_NOTE

from ..data.batches import batch_generator
from ..data.views import ViewData
from ..model import K3M
from ..model.k3m import EncodedProducts
from ..ranking import Applicability, Calibration
from ..ranking.scoring import row_scores
from .detector import (NAMED, SEEN_ELSEWHERE, TEXT_RATIO, Plantings, ScoredPair, ValueFeatures, WrongValueDetector, learn,
                       probability_wrong, sample_products)
from .hiding import HiddenFacts
from .mentions import Mentions



@dataclass(frozen=True)
class CompletionOptions:
    """What ``kgmm complete`` writes.

    Attributes:
        top_k: values kept per missing attribute.
        min_score: calibrated probability a value needs to be kept.
        batch_size: products per batch (and per store transaction).
        seed: seeds the neighbour sampling.
        min_coverage: estimated share of a category's products that must have an attribute for it
            to apply; None measures the threshold on held-out products (:class:`Applicability`).
        check_noise: score existing catalog values too.
        error_rate: the share of catalog values assumed wrong (:mod:`.detector`): an assumption
            to state, not a measurement; ``P(wrong)`` of a value scales with it.
        flag_min: ``P(wrong)`` a catalog value needs to be flagged; flags are right about this
            often when ``error_rate`` holds.
    """

    top_k: int = 3
    min_score: float = 0.1
    batch_size: int = 64
    seed: int = 0
    min_coverage: float | None = None
    check_noise: bool = True
    error_rate: float = 0.02
    flag_min: float = 0.8


@dataclass(frozen=True)
class Prediction:
    """A value proposed for an attribute the product lacks."""

    product_id: str
    attribute: str
    value: str
    score: float
    rank: int


@dataclass(frozen=True)
class NoiseFlag:
    """A catalog value the model finds implausible, and what it would put instead."""

    product_id: str
    attribute: str
    value: str
    value_score: float
    suggestion: str
    suggestion_score: float

    def note(self) -> str:
        """Stored as the suggestion edge's ``raw`` so analysts see why it is there."""
        return f"{FLAG_NOTE}{self.value!r} (p={self.value_score:.3f})"  # read back by graph_store.flagged_value


@dataclass(frozen=True)
class Check:
    """One catalog value scored with its attribute hidden (snapshot indices).

    ``judgeable``: the value appears on another fact of the store (a value the catalog shows
    once scores low whatever its truth). ``named`` and ``text``: whether the product's text
    names the value, and the log likelihood ratio of "wrong" over "right" that this gives for
    its attribute (:mod:`.mentions`). ``features``: what the detector reads (:mod:`.detector`);
    ``ratio``: its log likelihood ratio of "planted" over "as the catalog has them", which ranks
    checks by suspicion; ``wrong``: ``P(wrong)`` at the run's assumed error rate.
    """

    product: int
    attribute: int
    value: int
    probability: float  # of the catalog value
    best: int  # the most probable other value
    best_probability: float
    judgeable: bool = True
    named: bool = False
    text: float = 0.0
    features: tuple[float, ...] = ()
    ratio: float = 0.0
    wrong: float = 0.0

    def flagged(self, options: CompletionOptions) -> bool:
        """Whether this value is flagged: ``P(wrong)`` at least ``flag_min``."""
        return self.wrong >= options.flag_min

    def suspicion(self) -> float:
        """How suspect the value is, for ranking: the detector's log likelihood ratio."""
        return self.ratio


class FactsByProduct:
    """``facts[p]``: product ``p``'s facts as {attribute: [(value, source), ...]} in edge order,
    built from its slice of the snapshot's edges (sorted by product) when asked. Why not one
    dictionary per product built up front: at a million products that was 11M Python tuples,
    gigabytes and a minute before the first batch, in every shard."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.ptr = snapshot.edge_ptr

    def __len__(self) -> int:
        return self.snapshot.num_products

    def __getitem__(self, product: int) -> dict[int, list[tuple[int, int]]]:
        start, end = int(self.ptr[product]), int(self.ptr[product + 1])
        found: dict[int, list[tuple[int, int]]] = {}
        snapshot = self.snapshot
        for a, v, s in zip(snapshot.edge_attribute[start:end].tolist(), snapshot.edge_value[start:end].tolist(),
                           snapshot.edge_source[start:end].tolist()):
            found.setdefault(a, []).append((v, s))
        return found


class Completer:
    """Scores batches of products of one snapshot with one model.

    Args:
        model: a K3M in eval mode whose id maps match ``snapshot``.
        snapshot: the store's graph, aligned to the model (:func:`align_snapshot`).
        calibration: the temperature to turn scores into probabilities.
        options: what to keep.
        device: where the model runs.
    """

    def __init__(self, model: K3M, snapshot: Snapshot, calibration: Calibration, options: CompletionOptions, device: torch.device) -> None:
        self.model, self.snapshot, self.calibration, self.options, self.device = model, snapshot, calibration, options, device
        self.data = ViewData(snapshot, model.tokenizer, model.config, model.num_patches)
        self.applicability = Applicability(snapshot, options.min_coverage, seed=options.seed)
        self.facts = FactsByProduct(snapshot)  # p -> a -> [(value, source)]
        self._position: dict[int, dict[int, int]] = {}
        self._check_reads_products = model.evidence is None or model.evidence.check_reads_products()
        self.value_count = np.bincount(snapshot.edge_value, minlength=len(snapshot.values))  # facts per value: judgeable when >= 2
        self._sample_checks: dict[int, list[Check]] = {}  # the detector's sample, scored once

    @cached_property
    def mentions(self) -> Mentions:
        """The naming rates of the catalog's attributes (measured when the first check needs them)."""
        return Mentions(self.snapshot)

    @cached_property
    def features(self) -> ValueFeatures:
        return ValueFeatures(self.snapshot, self.mentions, self.value_count)

    @cached_property
    def detector(self) -> WrongValueDetector:
        """Learnt when the first check needs it, from the checks of a sample spread over the
        catalog's products (the same whatever the shard) and values planted in their place."""
        sample = list(sample_products(self.snapshot.num_products))
        pairs: list[ScoredPair] = []
        for first in range(0, len(sample), self.options.batch_size):
            for check in self._scored(sample[first : first + self.options.batch_size], pairs):
                self._sample_checks.setdefault(check.product, []).append(check)
        return learn(pairs, self.features, Plantings(self.snapshot, self.features.counts), self.options.seed)

    @torch.no_grad()
    def _encode(self, rows: list[int], key: tuple[int, ...], hidden: dict[int, Tensor] | None = None) -> EncodedProducts:
        """Encoded products (vectors and evidence), one row each; ``hidden``: batch row -> value ids withheld."""
        transforms = (HiddenFacts(hidden, len(self.snapshot.values)),) if hidden else ()
        batch = self.data.build(rows, batch_generator(self.options.seed, *key), train=False, transforms=transforms)
        return self.model(batch.to(self.device), heads=False).products()

    def _evidence_only(self, products: list[int]) -> EncodedProducts:
        """What the evidence terms read of ``products``, without a forward (the product vectors are
        zeros: a check row that holds the deep score at 0 never reads them)."""
        from ..training.evidence_stage import product_evidence

        evidence = product_evidence(self.model, self.data, products).to(self.device)
        return EncodedProducts(torch.zeros(len(products), self.model.config.model.hidden, device=self.device), evidence)

    @torch.no_grad()
    def _probabilities(self, vectors: EncodedProducts, rows: list[int], attributes: list[int], exclude: Tensor | None = None,
                       check: bool = False) -> list[Tensor]:
        """Calibrated probabilities over ``data.candidates[attributes[i]]`` for batch row ``rows[i]``
        (on the CPU); rows of similar width are scored in one call (:func:`row_scores`); ``exclude``:
        a value per row left out of the category prior's counts; ``check``: noise-check scores."""
        scores = row_scores(self.model, vectors, rows, attributes, [self.data.candidates[a] for a in attributes], self.device,
                            on_cpu=True, exclude=exclude, check=check)
        return [self.calibration.probabilities(score) for score in scores]

    def predictions(self, products: list[int]) -> tuple[list[Prediction], int]:
        """Top values for the applicable attributes each product lacks; also the pair count."""
        wanted = [(p, attributes) for p in products if (attributes := self.applicability.missing(p))]
        if not wanted:
            return [], 0
        rows = [p for p, _ in wanted]
        vectors = self._encode(rows, (0, rows[0]))
        pairs = [(i, p, a) for i, (p, attributes) in enumerate(wanted) for a in attributes]
        probabilities = self._probabilities(vectors, [i for i, _, _ in pairs], [a for _, _, a in pairs])
        out = []
        values, names = self.snapshot.values, self.snapshot.attributes
        for (_, p, a), probs in zip(pairs, probabilities):
            best = probs.topk(min(self.options.top_k, probs.numel()))
            for rank, (prob, i) in enumerate(zip(best.values.tolist(), best.indices.tolist()), 1):
                if prob >= self.options.min_score:
                    value = values[int(self.data.candidates[a][i])][1]
                    out.append(Prediction(self.snapshot.product_ids[p], names[a], value, prob, rank))
        return out, len(pairs)

    def flags(self, products: list[int]) -> tuple[list[NoiseFlag], int]:
        """Suspect catalog values of ``products`` (:meth:`Check.flagged`); also the number of values checked."""
        checks = self.checks(products)
        out = [NoiseFlag(self.snapshot.product_ids[c.product], self.snapshot.attributes[c.attribute], self.snapshot.values[c.value][1],
                         c.probability, self.snapshot.values[c.best][1], c.best_probability)
               for c in checks if c.flagged(self.options)]
        return out, len(checks)

    def checks(self, products: list[int]) -> list[Check]:
        """Every catalog value of ``products`` scored with its attribute's facts hidden (:meth:`_scored`),
        with the detector's verdict (:mod:`.detector`)."""
        detector = self.detector  # first: scoring the sample fills _sample_checks
        known = [p for p in products if p in self._sample_checks]
        checks = self._scored([p for p in products if p not in self._sample_checks]) + [c for p in known for c in self._sample_checks[p]]
        checks.sort(key=lambda c: c.product)  # stable: a product's checks keep their order, whichever batch scored them
        if not checks:
            return checks
        ratio = detector.log_ratio(np.array([c.features for c in checks]))
        wrong = probability_wrong(ratio, self.options.error_rate)
        return [replace(c, ratio=float(r), wrong=float(w)) for c, r, w in zip(checks, ratio.tolist(), wrong.tolist())]

    def _scored(self, products: list[int], pairs: list[ScoredPair] | None = None) -> list[Check]:
        """Every catalog value of ``products`` scored with its attribute's facts hidden; ``pairs``:
        also collect each check's scores over its candidates (what the detector learns from).

        Every attribute with two or more values is checked, identifier-like ones (brand,
        model name) included: their values rarely reach a confident suggestion from the
        category and the graph, but a value the text names (the evidence terms) does, so a
        swapped brand that contradicts the title is caught.

        A model whose check row reads only the evidence terms (the default since the check row:
        :meth:`~kgmm.model.evidence.Evidence.check_reads_products`) scores every check of the
        batch from the products' evidence alone, with no forward: the evidence terms do not read
        the product's facts, so hiding the attribute would change no number, and a batch costs
        no forward instead of one per checked attribute (about 10 on Flipkart). Otherwise
        round ``r`` asks about each product's ``r``-th checkable attribute with its facts hidden,
        one forward per round, so a product appears at most once per batch (the subgraph
        sampler needs distinct seeds).

        The checked value is left out of the category prior's counts (the first one, when a
        product has several for the attribute). Why: the prior was counted from the catalog,
        so a wrong value counts for itself; in a small category its own count made a value
        typed for the wrong category look plausible, where a held-out value is never counted.
        """
        jobs: dict[int, list[int]] = {}
        for p in products:
            attributes = [a for a, facts in self.facts[p].items()
                          if self.data.candidates[a].numel() >= 2 and any(s == SourceCode.CATALOG for _, s in facts)]
            if attributes:
                jobs[p] = sorted(attributes)
        if not self._check_reads_products and jobs:  # the evidence alone: no forward at all
            vectors = self._evidence_only(list(jobs))
            rows = [p for p, attributes in jobs.items() for _ in attributes]
            asked = [a for attributes in jobs.values() for a in attributes]
            return self._checked(vectors, [i for i, attributes in enumerate(jobs.values()) for _ in attributes], rows, asked, pairs)
        out = []
        rounds = max((len(a) for a in jobs.values()), default=0)
        for r in range(rounds):
            rows = [p for p, attributes in jobs.items() if len(attributes) > r]
            hidden = {i: torch.tensor([v for v, _ in self.facts[p][jobs[p][r]]]) for i, p in enumerate(rows)}
            vectors = self._encode(rows, (1, rows[0], r), hidden)
            out += self._checked(vectors, list(range(len(rows))), rows, [jobs[p][r] for p in rows], pairs)
        return out

    def _checked(self, vectors: EncodedProducts, positions: list[int], rows: list[int], asked: list[int],
                 pairs: list[ScoredPair] | None = None) -> list[Check]:
        """The checks of product ``rows[i]``'s values of attribute ``asked[i]``, scored from row
        ``positions[i]`` of ``vectors`` with the checked value out of the prior's counts."""
        checked = torch.tensor([self.facts[p][a][0][0] for p, a in zip(rows, asked)])
        probabilities = self._probabilities(vectors, positions, asked, exclude=checked, check=True)
        if pairs is not None:
            for p, a, row in zip(rows, asked, probabilities):
                own = frozenset(v for v, _ in self.facts[p][a])
                if len(own) < row.numel():  # as in _judge: some candidate is not the product's own
                    pairs += [ScoredPair(p, a, self.data.candidates[a].numpy(), row.numpy(), own, v)
                              for v, source in self.facts[p][a] if source == SourceCode.CATALOG]
        return self._judge(rows, asked, probabilities)

    def _judge(self, rows: list[int], asked: list[int], probabilities: list[Tensor]) -> list[Check]:
        """The checks of product ``rows[i]``'s catalog values of attribute ``asked[i]`` from
        ``probabilities[i]`` over the attribute's candidates: each value's probability, and the
        most probable value the product does not have (ties: the highest value id, as ``max``
        over (probability, value) pairs). All rows at once: one padded [rows, widest] table
        (padding and the product's own values at -1), one ``max`` per row."""
        if not rows:
            return []
        width = max(p.numel() for p in probabilities)
        probs = torch.full((len(rows), width), -1.0)
        ids = torch.full((len(rows), width), -1, dtype=torch.long)
        own_rows, own_at, wanted = [], [], []  # the product's own values; (row, position, value) of the catalog ones
        for i, (p, a, row) in enumerate(zip(rows, asked, probabilities)):
            probs[i, : row.numel()] = row
            ids[i, : row.numel()] = self.data.candidates[a]
            where = self._positions(a)
            for v, source in self.facts[p][a]:
                if v in where:
                    own_rows.append(i)
                    own_at.append(where[v])
                if source == SourceCode.CATALOG:
                    wanted.append((i, where[v], v))
        others = probs.clone()
        others[own_rows, own_at] = -1.0
        best_probs = others.max(1).values
        best = torch.where(others == best_probs.unsqueeze(1), ids, -1).max(1).values.tolist()
        best_probs = best_probs.tolist()
        values = probs[[i for i, _, _ in wanted], [at for _, at, _ in wanted]].tolist()
        out = []
        for (i, _, v), probability in zip(wanted, values):
            if best_probs[i] < 0:  # every candidate is the product's own
                continue
            p, a = rows[i], asked[i]
            f = tuple(self.features.row(p, a, v, probability, best_probs[i], int(self.value_count[v])))
            out.append(Check(p, a, v, probability, best[i], best_probs[i], bool(f[SEEN_ELSEWHERE]), bool(f[NAMED]), f[TEXT_RATIO], f))
        return out

    def _positions(self, a: int) -> dict[int, int]:
        """Value id -> its position among attribute ``a``'s candidates (built once per attribute)."""
        found = self._position.get(a)
        if found is None:
            found = self._position[a] = {v: i for i, v in enumerate(self.data.candidates[a].tolist())}
        return found
