"""Direct evidence for a value, added to the link score: the category prior, the value's
name in the text, and a lexical classifier.

Why: on a catalog of a thousand products the deep path (transformer, GNN, fusion) learns
slowly, while the two things a practitioner tries first are strong: the most common value
in the product's category, and a linear model over the words of the title and
description. Measured on Flipkart (``docs/EVALUATION.md``, "Evidence terms"), an L-BFGS
combination of the category prior, "the value's words appear in the title / description"
and a TF-IDF classifier's log-probabilities reaches Hits@1 0.77 where the classifier alone
reaches 0.685. So K3M's score gets those terms, learnt with everything else by LPM:

``score(p, a, v) = deep(p, a, v) + bias(v) + w_a . [log prior(v | category of p, a),
mention features of v in p's text] + <lexical(p), lexical(v)>``

* **Category prior** (lever "explicit additive log-prior"): ``P(v | leaf category, a)``
  from the training facts, smoothed towards the parent category, recursively up to the
  whole catalog (a Dirichlet back-off, ``alpha`` pseudo-counts per level), so a category
  with few products borrows from its parent. Its weight starts at 1: the model starts at
  the rule and learns the residual. It reads the product's category, which is knowledge:
  a product whose knowledge is withheld gets the catalog-wide prior.
* **Mentions** (lever "value names as text"): for each candidate value, the share of its
  words found in the title and in the description, and whether all of them are: "resin"
  in a title meets the value ``resin``, however rare the value.
* **Lexical** (lever "a lexical path that learns from few examples"): a fastText-style
  classifier, the mean of hashed word and character n-gram embeddings of the product's text
  dotted with the value's vector (the bag of its own name's n-grams from the same table,
  so a value mentioned in the text starts close to it, plus a learned residual).

The text terms read the batch's text tables, with the text stream's robustness decisions
(dropped or swapped titles; evaluation damage), and are off when the text is not read.
Weights per attribute are a global vector plus a per-attribute residual (zero at start),
so a rare attribute uses the global weights. Off with ``model.evidence: false``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..modalities.base import ModalInput
from ..modalities.lexical import EVIDENCE_BUCKETS as LEXICAL_BUCKETS

LEXICAL_DIM = 64
PRIOR_ALPHA = 1.0
"""Pseudo-counts with which each category level leans on its parent's distribution."""
FEATURES = ("prior", "all_in_title", "all_in_description", "share_in_title", "share_in_description", "prior_without_text")
START_WEIGHTS = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
"""The prior counts fully at the start (the rule); the text terms are learnt.

``prior_without_text`` is the log-prior again on rows whose text is not read (0 elsewhere).
Why: with text, the prior's learnt weight is small (the text terms carry the score) and the
value bias, a catalog-wide popularity, outweighs it; without text the same weights ranked
values by popularity instead of by the category (measured on Flipkart, 50% of texts missing:
Hits@1 0.35 on the damaged half where the category rule gets 0.58). The extra weight lets the
prior take over when there is no text."""
BLEND = ("deep", "bias", *FEATURES, "lexical")
"""The parts of the link score :func:`kgmm.training.blend.fit_blend` scales: the deep score,
the value bias, each evidence feature's weighted term and the lexical classifier's score."""
BLEND_ROWS = ("text", "no_text", "check")
"""One row of scales for products whose text is read, one for those whose text is not (the
balance of the remaining parts differs: without text the category prior is all there is), and
one for checking a catalog value the model was trained on (``kgmm complete``'s noise check):
only the parts that cannot have memorised that fact (the prior counted without it, the
mentions, the value bias), the deep score and the lexical classifier held at 0."""
MEMORISING = ("deep", "lexical")
"""The parts a check leaves out: trained on the very fact being checked, they vouch for it."""


@dataclass
class ProductEvidence:
    """What the evidence terms read of each product, row-aligned with the product vectors.

    Attributes:
        category: [B] leaf category id, -1 when unknown or withheld.
        ngrams: [B, N] lexical n-gram buckets of title and description (0 pads).
        title_words: [B, T] word buckets of the title, sorted (0 pads first).
        description_words: [B, D] word buckets of the description, sorted.
        text: [B] bool, the text was read (otherwise the text terms are 0).
    """

    category: Tensor
    ngrams: Tensor
    title_words: Tensor
    description_words: Tensor
    text: Tensor

    def select(self, rows: Tensor | int | slice) -> ProductEvidence:
        """The rows ``rows`` (an index tensor, an int or a slice)."""
        if isinstance(rows, int):
            rows = slice(rows, rows + 1)
        return ProductEvidence(*(t[rows] for t in self._tensors()))

    def _tensors(self) -> tuple[Tensor, ...]:
        return self.category, self.ngrams, self.title_words, self.description_words, self.text

    def to(self, device: torch.device | str) -> ProductEvidence:
        return ProductEvidence(*(t.to(device) for t in self._tensors()))

    def __len__(self) -> int:
        return int(self.category.shape[0])

    @staticmethod
    def cat(parts: list[ProductEvidence]) -> ProductEvidence:
        """Rows of several batches in order (widths padded with 0)."""

        def stack(tensors: list[Tensor]) -> Tensor:
            if tensors[0].dim() == 1:
                return torch.cat(tensors)
            width = max(t.shape[1] for t in tensors)
            return torch.cat([nn.functional.pad(t, (width - t.shape[1], 0)) for t in tensors])  # left pad keeps the order

        return ProductEvidence(*(stack([getattr(p, name) for p in parts]) for name in
                                 ("category", "ngrams", "title_words", "description_words", "text")))


def evidence_of(inputs: ModalInput, category: Tensor, read_text: bool, read_knowledge: bool) -> ProductEvidence:
    """A batch's :class:`ProductEvidence` from its evidence input (``data`` [B, 3, W]: n-grams,
    title words, description words, see :class:`kgmm.data.evidence.EvidenceInput`)."""
    text = inputs.present & read_text
    keep = text.view(-1, 1).to(inputs.data.dtype)
    ngrams, title, description = (inputs.data[:, g] * keep for g in range(3))
    category = category if read_knowledge else torch.full_like(category, -1)
    return ProductEvidence(category, ngrams, title.sort(dim=1).values, description.sort(dim=1).values, text)


class CategoryPrior(nn.Module):
    """``log P(value | category, attribute)`` with back-off along the category tree.

    Counts are sparse (one entry per (category, value) seen in training), looked up by
    binary search, so memory grows with the facts, not with categories x values.
    """

    def __init__(self, num_attributes: int, num_values: int, num_categories: int) -> None:
        super().__init__()
        self.num_values, self.num_attributes, self.num_categories = num_values, num_attributes, num_categories
        self.register_buffer("parent", torch.full((max(num_categories, 1),), -1, dtype=torch.long))
        self.register_buffer("values_per_attribute", torch.ones(max(num_attributes, 1)))
        for name in ("value_keys", "value_counts", "total_keys", "total_counts"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.long if name.endswith("keys") else torch.float32))

    def fit(self, product_category: Tensor, category_parent: Tensor, value_attribute: Tensor,
            edge_product: Tensor, edge_attribute: Tensor, edge_value: Tensor) -> None:
        """Count the training facts per category level (every ancestor and the catalog)."""
        C, V, A = self.num_categories, self.num_values, self.num_attributes
        self.parent = category_parent.long().clone() if C else self.parent
        self.values_per_attribute = torch.bincount(value_attribute.long(), minlength=A).clamp(min=1).float()[: max(A, 1)]
        level = product_category.long()[edge_product.long()]
        value, attribute = edge_value.long(), edge_attribute.long()
        facts = value.numel()
        value_keys, total_keys = _KeyCounter((C + 1) * V, facts), _KeyCounter((C + 1) * A, facts)
        value_keys.add(C * V + value)  # the catalog (category C) counts every fact
        total_keys.add(C * A + attribute)
        while bool((level >= 0).any()):  # then each fact's leaf category and every ancestor
            on = level >= 0
            here = level.clamp(min=0)
            value_keys.add(here * V + value, on)  # counted per level: memory of one level's keys, not all
            total_keys.add(here * A + attribute, on)
            level = torch.where(on, self.parent[here], -1)
        self.value_keys, self.value_counts = value_keys.result()
        self.total_keys, self.total_counts = total_keys.result()

    def forward(self, category: Tensor, attribute: Tensor, values: Tensor, exclude: Tensor | None = None) -> Tensor:
        """``category`` [N] (-1: unknown), ``attribute`` [N], ``values`` [N, M] -> log-prior [N, M].

        ``exclude`` [N]: a counted training fact's value per row (-1: none), left out of the
        counts (leave-one-out). Why: a training fact scored against counts that include it
        sees its own answer (in a category of one product, certainly), so the model would
        learn to trust the prior more than it deserves on held-out facts, which are never
        counted.
        """
        C, V, A = self.num_categories, self.num_values, self.num_attributes
        prob = (1.0 / self.values_per_attribute[attribute]).view(-1, 1).expand(values.shape).clone()  # uniform start
        chain = [torch.full_like(category, C)]  # the catalog, then from the top category down to the leaf
        level = category
        down = []
        while bool((level >= 0).any()):
            down.append(level)
            level = torch.where(level >= 0, self.parent[level.clamp(min=0)], torch.full_like(level, -1))
        chain += down[::-1]
        value_counts, total_counts = self._counts()
        for level in chain:
            known = (level >= 0).view(-1, 1)
            n = value_counts(level.clamp(min=0).view(-1, 1) * V + values)
            total = total_counts(level.clamp(min=0) * A + attribute).view(-1, 1)
            if exclude is not None:
                n = (n - (values == exclude.view(-1, 1)).float()).clamp(min=0)
                total = (total - (exclude >= 0).float().view(-1, 1)).clamp(min=0)
            prob = torch.where(known, (n + PRIOR_ALPHA * prob) / (total + PRIOR_ALPHA), prob)
        return prob.clamp(min=1e-9).log()

    def _counts(self):
        """Count lookups for value keys and total keys: a gather from a dense table when
        (categories + 1) x values fits :data:`DENSE_PRIOR_CELLS`, else a binary search of the
        sparse counts. Why: the binary searches were half of a noise check's time (10,000
        products, ``benchmarks/complete.py``); the same numbers either way (tested). The table is
        built on first use and rebuilt when the counts change (a fit, a load)."""
        C, V, A = self.num_categories, self.num_values, self.num_attributes
        state = (id(self.value_keys), self.value_keys._version, id(self.total_keys), self.total_keys._version, self.value_keys.device,
                 DENSE_PRIOR_CELLS)
        if getattr(self, "_dense_state", None) != state:
            self._dense = None
            if (C + 1) * max(V, A) <= DENSE_PRIOR_CELLS and self.value_keys.numel():
                values = torch.zeros((C + 1) * V, device=self.value_keys.device)
                values[self.value_keys] = self.value_counts
                totals = torch.zeros((C + 1) * A, device=self.total_keys.device)
                totals[self.total_keys] = self.total_counts
                self._dense = (values, totals)
            self._dense_state = state
        if self._dense is None:
            return (lambda query: _lookup(self.value_keys, self.value_counts, query),
                    lambda query: _lookup(self.total_keys, self.total_counts, query))
        values, totals = self._dense
        return (lambda query: values[query]), (lambda query: totals[query])


DENSE_PRIOR_CELLS = 1 << 25
"""Largest dense count table (entries, 128 MiB of floats) :class:`CategoryPrior` builds."""


class _KeyCounter:
    """Counts of int64 keys in ``[0, space)`` added level by level, as (sorted unique keys, counts).

    A category is a leaf for some facts and an ancestor for others, so its keys come from
    several levels and their counts add up. When the key space is at most the number of facts
    (or small), the counts go straight into a dense int32 table (4 bytes a cell, so no more
    memory than the facts' own keys): a scatter-add instead of a sort of every level's keys,
    which was 16 s of pretraining's start-up at a million products. Otherwise each level is
    sorted and counted (``torch.unique``) and the levels merged. The same keys and counts
    either way (tested).
    """

    DENSE_MIN_CELLS = 1 << 22

    def __init__(self, space: int, facts: int) -> None:
        self.dense = torch.zeros(space, dtype=torch.int32) if space <= max(facts, self.DENSE_MIN_CELLS) else None
        self.parts: list[tuple[Tensor, Tensor]] = []

    def add(self, keys: Tensor, counted: Tensor | None = None) -> None:
        """Count ``keys`` (where ``counted``, a bool mask, is true: a mask costs less than
        selecting the keys, which the dense table need not do)."""
        if self.dense is not None:
            ones = torch.ones(keys.shape, dtype=torch.int32) if counted is None else counted.to(torch.int32)
            self.dense.index_add_(0, keys, ones)
        else:
            unique, counts = torch.unique(keys if counted is None else keys[counted], return_counts=True)  # sorted
            self.parts.append((unique, counts.float()))

    def result(self) -> tuple[Tensor, Tensor]:
        if self.dense is not None:
            keys = self.dense.nonzero().view(-1)  # ascending
            return keys, self.dense[keys].float()
        if not self.parts:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0)
        unique, inverse = torch.unique(torch.cat([keys for keys, _ in self.parts]), return_inverse=True)
        return unique, torch.zeros(unique.numel()).index_add_(0, inverse, torch.cat([counts for _, counts in self.parts]))


def _lookup(keys: Tensor, counts: Tensor, query: Tensor) -> Tensor:
    """Counts of ``query`` keys (any shape) in the sorted ``keys`` (0 where absent)."""
    if keys.numel() == 0:
        return torch.zeros(query.shape, device=query.device)
    position = torch.searchsorted(keys, query.contiguous()).clamp(max=keys.numel() - 1)
    return torch.where(keys[position] == query, counts[position], torch.zeros((), device=query.device))


def mention_features(words: Tensor, value_words: Tensor) -> tuple[Tensor, Tensor]:
    """(all of the value's words present, share present) [N, M] for sorted product ``words``
    [N, L] and the candidates' ``value_words`` [N, M, W] (0 pads)."""
    n, m, w = value_words.shape
    flat = value_words.reshape(n, m * w)
    if words.shape[1] == 0:
        found = torch.zeros_like(flat, dtype=torch.bool)
    else:
        position = torch.searchsorted(words, flat).clamp(max=words.shape[1] - 1)
        found = (words.gather(1, position) == flat) & (flat > 0)
    found = found.view(n, m, w).sum(-1).float()
    count = (value_words > 0).sum(-1).float()
    return ((found == count) & (count > 0)).float(), found / count.clamp(min=1)


def with_text(raw: Tensor, text: Tensor) -> Tensor:
    """:data:`FEATURES` [N, M, F] from the prior and the four mention features ``raw`` [N, M, 5]
    and whether each row's text is read ``text`` [N]: rows without text get no text terms
    and the prior a second time, as ``prior_without_text``."""
    read = text.view(-1, 1, 1).to(raw.dtype)
    return torch.cat([raw[..., :1], raw[..., 1:] * read, raw[..., :1] * (1 - read)], dim=-1)


class Evidence(nn.Module):
    """The evidence terms of the link score (see the module docstring).

    Args:
        num_attributes, num_values, num_categories: the snapshot's sizes.
        name_words: [V, W] word buckets of each value's name (0 pads).
        name_ngrams: [V, N] n-gram buckets of each value's name (0 pads).
    """

    def __init__(self, num_attributes: int, num_values: int, num_categories: int) -> None:
        super().__init__()
        self.prior = CategoryPrior(num_attributes, num_values, num_categories)
        self.register_buffer("name_words", torch.zeros(max(num_values, 1), 1, dtype=torch.long))
        self.register_buffer("name_ngrams", torch.zeros(max(num_values, 1), 1, dtype=torch.long))
        self.weights = nn.Parameter(torch.tensor(START_WEIGHTS))
        self.attribute_weights = nn.Embedding(max(num_attributes, 1), len(FEATURES))
        nn.init.zeros_(self.attribute_weights.weight)
        self.ngram = nn.EmbeddingBag(LEXICAL_BUCKETS, LEXICAL_DIM, mode="sum", padding_idx=0)
        self.register_buffer("idf", torch.ones(LEXICAL_BUCKETS))  # inverse document frequency of each bucket
        nn.init.normal_(self.ngram.weight, std=0.1)
        self.value_lexical = nn.Embedding(max(num_values, 1), LEXICAL_DIM)
        nn.init.zeros_(self.value_lexical.weight)
        # scales of the link score's parts (:data:`BLEND_ROWS` x :data:`BLEND`): 1 while training,
        # fitted on validation facts after it
        self.register_buffer("blend", torch.ones(len(BLEND_ROWS), len(BLEND)))

    def set_idf(self, document_frequency: Tensor, documents: int) -> None:
        """Smoothed IDF (scikit-learn's ``1 + log((1 + n) / (1 + df))``) of each n-gram bucket."""
        self.idf = 1.0 + torch.log((1.0 + documents) / (1.0 + document_frequency.float()))

    def bag(self, ngrams: Tensor) -> Tensor:
        """[R, LEXICAL_DIM] IDF-weighted mean n-gram embedding of each row of ``ngrams`` [R, N]
        (what TF-IDF features are to a linear classifier: rare n-grams count most)."""
        weights = self.idf[ngrams] * (ngrams > 0)
        weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-9)
        return self.ngram(ngrams, per_sample_weights=weights)

    def set_names(self, name_words: Tensor, name_ngrams: Tensor) -> None:
        """The value names' word and n-gram buckets (from the tokenizer, at model birth)."""
        self.name_words = name_words.long()
        self.name_ngrams = name_ngrams.long()

    def adopt_shapes(self, state: dict[str, Tensor], prefix: str) -> None:
        """Resize the data-sized buffers to a saved state's before loading it (a model saved
        before the blend existed scores as it did: every scale 1; one saved before the blend had
        a row for products without text uses its one row for both)."""
        blend = state.setdefault(prefix + "blend", torch.ones(len(BLEND_ROWS), len(BLEND)))
        blend = blend.view(-1, len(BLEND))
        if blend.shape[0] < len(BLEND_ROWS):  # the missing rows read as the first (with text)
            state[prefix + "blend"] = torch.cat([blend, blend[:1].expand(len(BLEND_ROWS) - blend.shape[0], -1)])
        for module, names in ((self, ("name_words", "name_ngrams")),
                              (self.prior, ("value_keys", "value_counts", "total_keys", "total_counts"))):
            inner = prefix + ("" if module is self else "prior.")
            for name in names:
                saved = state.get(inner + name)
                if saved is not None:
                    setattr(module, name, torch.zeros(saved.shape, dtype=saved.dtype))

    def lexical(self, evidence: ProductEvidence) -> Tensor:
        """[B, LEXICAL_DIM] the mean n-gram embedding of each product's text (0 without text)."""
        return self.bag(evidence.ngrams) * evidence.text.view(-1, 1)

    def forward(self, evidence: ProductEvidence, attribute: Tensor, values: Tensor, exclude: Tensor | None = None) -> Tensor:
        """Evidence scores [N, M] of ``values`` [N, M] (-1 pads) for ``attribute`` [N];
        ``exclude`` [N]: training facts' values, left out of the prior (see :class:`CategoryPrior`)."""
        return self.combine(self.features(evidence, attribute, values, exclude), evidence, attribute, values)

    def features(self, evidence: ProductEvidence, attribute: Tensor, values: Tensor, exclude: Tensor | None = None) -> Tensor:
        """The parameter-free terms [N, M, F] (:data:`FEATURES`): log-prior and mentions, gated
        by whether the text is read (:func:`with_text`)."""
        values = values.clamp(min=0)
        prior = self.prior(evidence.category, attribute, values, exclude)  # [N, M]
        words = self.name_words[values]  # [N, M, W]
        all_title, share_title = mention_features(evidence.title_words, words)
        all_description, share_description = mention_features(evidence.description_words, words)
        return with_text(torch.stack([prior, all_title, all_description, share_title, share_description], dim=-1), evidence.text)

    def combine(self, features: Tensor, evidence: ProductEvidence, attribute: Tensor, values: Tensor) -> Tensor:
        """Weighted features plus the lexical classifier's score, each scaled by its blend: [N, M]."""
        parts = self.parts(features, evidence, attribute, values)  # [N, M, F + 1]
        return (parts * self.blend_for(evidence.text)[:, 2:].unsqueeze(1).to(parts.dtype)).sum(-1)

    def blend_for(self, text: Tensor, check: bool = False) -> Tensor:
        """[N, len(BLEND)] each row's scales: :data:`BLEND_ROWS` chosen by whether its text is read,
        or with ``check`` the check row for every row (a product without text too: its mention
        terms are 0, so the check scores it by the prior without the checked fact and the value
        bias, and never by the memorising parts the no-text row scales)."""
        if check:
            return self.blend[BLEND_ROWS.index("check")].expand(text.shape[0], -1)
        return self.blend[torch.where(text.bool(), BLEND_ROWS.index("text"), BLEND_ROWS.index("no_text"))]

    def check_reads_products(self) -> bool:
        """Whether a noise check needs the product vector: False when the check row holds the
        memorising parts (:data:`MEMORISING`, the deep score among them) at 0, as
        :func:`kgmm.training.blend.fit_blend` leaves it; then a check reads only the evidence
        terms, which do not see the product's facts, and hiding the checked attribute changes no
        number. A model whose blend predates the check row (read as the text row) still does."""
        row = self.blend[BLEND_ROWS.index("check")]
        return bool((row[[BLEND.index(name) for name in MEMORISING]] != 0).any())

    def parts(self, features: Tensor, evidence: ProductEvidence, attribute: Tensor, values: Tensor, lexical: bool = True) -> Tensor:
        """Each weighted feature's term and the lexical classifier's score, unblended: [N, M, F + 1]
        (without ``lexical`` its score is 0, not computed)."""
        values = values.clamp(min=0)
        weights = self.weights + self.attribute_weights(attribute)  # [N, F]
        terms = features * weights.unsqueeze(1)  # [N, M, F]
        if not lexical:
            return torch.cat([terms, terms.new_zeros(*terms.shape[:2], 1)], -1)
        lexical = self.lexical(evidence)  # [N, k]
        unique, position = values.unique(return_inverse=True)  # each value's name bag once, however many rows ask
        names = self.bag(self.name_ngrams[unique]) + self.value_lexical(unique)  # [U, k]
        return torch.cat([terms, (lexical @ names.T).gather(1, position).unsqueeze(-1)], -1)  # [N, U] -> [N, M], never [N, M, k]
