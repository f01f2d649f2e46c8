"""The text baselines a practitioner tries before any pretraining: a linear classifier per attribute.

``tfidf``: word 1-2-gram and character 3-5-gram TF-IDF of title + description, and for each
attribute a multinomial logistic regression from those features to the attribute's values,
trained on the protocol's training triples only. ``frozen-text``: the same classifier over the
mean-pooled embedding of a local pretrained text encoder (``text.pretrained``), not fine-tuned.

Why they are in the protocol: on catalogs whose descriptions repeat the specifications, a
20-line classifier is what a data team would ship instead of kgmm, so the default model is
measured against it, on the same splits, calibrated the same way.

* **Candidates.** Each held-out triple is ranked among its :class:`RankingTask` candidates.
  A candidate the attribute's classifier never saw in training gets a score below every seen
  value (one less than the row's lowest log-probability): it ties with the other unseen ones,
  and RankingTask averages the tie, as for every model.
* **Regularisation.** One inverse strength ``C`` for all attributes, picked from
  :data:`C_GRID` by Hits@1 (then MRR) on the *validation* triples; the test triples never
  choose anything.
* **Vocabulary.** The vectoriser (and for ``frozen-text`` the encoder) reads every product's
  text, as K3M's WordPiece vocabulary does: unsupervised, no value of any held-out triple.
* **Damage.** The features are a function of each product's text only, so missing or swapped
  text is a re-indexing of the feature rows by :func:`.corruption.text_sources`, the plan
  :func:`.corruption.corrupt` applies to K3M's token tables; a missing text becomes the
  features of the empty text.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import sparse
from torch import Tensor

from graph_store import Snapshot

from ..ranking import RankingTask

C_GRID = (1.0, 10.0, 100.0)
"""Inverse regularisation strengths tried on the validation triples."""
MAX_ITER = 300


def product_texts(snapshot: Snapshot) -> list[str]:
    """Title and description of each product, as one string."""
    return [f"{t} {d}".strip() for t, d in zip(snapshot.titles, snapshot.descriptions)]


def has_text(snapshot: Snapshot) -> np.ndarray:
    """[P] bool: the product has a title or a description (swap partners come from these)."""
    return np.array([bool(t or d) for t, d in zip(snapshot.titles, snapshot.descriptions)], dtype=bool)


@dataclass
class TextFeatures:
    """One feature row per product, plus the row of an empty text.

    Attributes:
        rows: [P, F] CSR matrix (TF-IDF) or dense array (embeddings).
        empty: [1, F] the features of a product without text.
    """

    rows: sparse.csr_matrix | np.ndarray
    empty: sparse.csr_matrix | np.ndarray

    def take(self, source: np.ndarray) -> sparse.csr_matrix | np.ndarray:
        """Rows for products showing ``source[i]``'s text (-1: no text): the damaged view."""
        index = np.where(source >= 0, source, self.rows.shape[0])
        if sparse.issparse(self.rows):
            return sparse.vstack([self.rows, self.empty], format="csr")[index]
        return np.concatenate([self.rows, self.empty])[index]


def tfidf_features(texts: list[str]) -> TextFeatures:
    """Word 1-2-gram + char 3-5-gram TF-IDF (sublinear tf, L2 rows), fitted on ``texts``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    vectorizer = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=1, sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True, lowercase=True),
    )
    rows = vectorizer.fit_transform(texts).tocsr().astype(np.float32)
    return TextFeatures(rows, vectorizer.transform([""]).tocsr().astype(np.float32))


@torch.no_grad()
def embedding_features(texts: list[str], directory: str | Path, max_length: int = 128, batch_size: int = 64) -> TextFeatures:
    """Mean-pooled last hidden states of a local pretrained encoder (sentence-transformer style).

    Nothing is fetched: ``directory`` must hold the model's config, weights and tokenizer.
    """
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    model = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
    chunks = []
    for start in range(0, len(texts) + 1, batch_size):
        chunk = (texts + [""])[start : start + batch_size]
        if not chunk:
            break
        encoded = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        states = model(**encoded).last_hidden_state  # [b, L, d]
        mask = encoded["attention_mask"].unsqueeze(-1).float()  # [b, L, 1]
        chunks.append(((states * mask).sum(1) / mask.sum(1).clamp(min=1)).float().numpy())
    vectors = np.concatenate(chunks)
    return TextFeatures(vectors[:-1], vectors[-1:])


DUAL_MAX_ROWS = 3000
"""Attributes with at most this many training rows are fitted in the rows' own span (below)."""


@dataclass
class _Design:
    """How one attribute's training rows become its classifier's inputs.

    With ``n`` training rows and ``F >> n`` sparse features, an L2-regularised linear model's
    weights lie in the span of those rows (any other component only adds to the penalty). So
    the same model is fitted on ``Z = X U / sqrt(lambda)`` [n, r], from the eigenvectors of the
    Gram matrix ``X X^T`` (r <= n): the same optimum, a problem of n x k instead of F x k
    parameters (seconds instead of minutes for a 500-value attribute on 50k n-grams). Dense or
    large inputs are used as they are (``basis`` None).
    """

    basis: sparse.csr_matrix | None = None  # [n, F] the training rows
    project: np.ndarray | None = None  # [n, r]

    @classmethod
    def of(cls, rows) -> _Design:
        if not sparse.issparse(rows) or rows.shape[0] > DUAL_MAX_ROWS or rows.shape[0] >= rows.shape[1]:
            return cls()
        gram = (rows @ rows.T).toarray().astype(np.float64)  # [n, n]
        eigenvalues, vectors = np.linalg.eigh(gram)
        keep = eigenvalues > 1e-8 * max(float(eigenvalues.max()), 1e-12)
        return cls(rows, vectors[:, keep] / np.sqrt(eigenvalues[keep]))

    def __call__(self, rows):
        """Classifier inputs for feature ``rows`` [m, F]: [m, r] in the dual case."""
        if self.basis is None:
            return rows
        kernel = rows @ self.basis.T  # [m, n]
        kernel = kernel.toarray() if sparse.issparse(kernel) else np.asarray(kernel)
        return kernel @ self.project


@dataclass
class _Head:
    """One attribute's classifier; ``model`` is None when training saw a single value."""

    classes: np.ndarray  # [k] value ids, sorted
    model: object | None
    design: _Design = field(default_factory=_Design)


@dataclass
class _Attribute:
    """One attribute's training rows, shared by every ``C`` tried."""

    products: np.ndarray  # [n]
    values: np.ndarray  # [n]
    design: _Design


def training_rows(features: TextFeatures, train_snapshot: Snapshot, attributes: set[int] | None = None) -> dict[int, _Attribute]:
    """Per attribute, the (product, value) rows of ``train_snapshot``'s edges and their design.

    A product with several values of an attribute gives one row per value (the softmax then
    spreads its mass over them, which is what a ranking needs). ``attributes``: only these
    (completion needs heads only for the attributes it predicts or checks).
    """
    pairs: dict[int, list[tuple[int, int]]] = {}
    for p, a, v in zip(train_snapshot.edge_product.tolist(), train_snapshot.edge_attribute.tolist(), train_snapshot.edge_value.tolist()):
        if attributes is None or a in attributes:
            pairs.setdefault(a, []).append((p, v))
    out = {}
    for a, rows in sorted(pairs.items()):
        products, values = np.array([p for p, _ in rows]), np.array([v for _, v in rows])
        design = _Design.of(features.rows[products]) if np.unique(values).size > 1 else _Design()
        out[a] = _Attribute(products, values, design)
    return out


@dataclass
class TextClassifier:
    """A logistic regression per attribute from product features to value ids.

    Attributes:
        heads: attribute -> its classifier (attributes without training triples are absent).
        C: the inverse regularisation strength every head was trained with.
        training_pairs: attribute -> [(product, value)] rows it was fitted on (what the
            leak test inspects).
    """

    heads: dict[int, _Head]
    C: float
    training_pairs: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def fit(cls, features: TextFeatures, rows: dict[int, _Attribute], C: float, seed: int = 0,
            start: TextClassifier | None = None) -> TextClassifier:
        """Fit one head per attribute of ``rows`` (from :func:`training_rows`).

        ``start``: a classifier fitted on the same rows with another ``C``; its weights are
        the starting point (fewer L-BFGS iterations along the grid, the same optimum).
        """
        from sklearn.linear_model import LogisticRegression

        heads = {}
        for a, attribute in rows.items():
            classes = np.unique(attribute.values)
            if classes.size < 2:
                heads[a] = _Head(classes, None)
                continue
            model = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed, warm_start=start is not None)
            previous = start.heads[a].model if start is not None else None
            if previous is not None:
                model.coef_, model.intercept_ = previous.coef_.copy(), previous.intercept_.copy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning at MAX_ITER: the fit is still a usable baseline
                model.fit(attribute.design(features.rows[attribute.products]), attribute.values)
            heads[a] = _Head(model.classes_.astype(np.int64), model, attribute.design)
        pairs = {a: list(zip(r.products.tolist(), r.values.tolist())) for a, r in rows.items()}
        return cls(heads, C, pairs)

    def log_probabilities(self, rows, attribute: int) -> tuple[np.ndarray, np.ndarray]:
        """(classes [k], log-probabilities [n, k]) of ``attribute``'s head for feature ``rows``."""
        head = self.heads.get(attribute)
        n = rows.shape[0]
        if head is None:
            return np.zeros(0, dtype=np.int64), np.zeros((n, 0))
        if head.model is None:
            return head.classes, np.zeros((n, 1))
        with np.errstate(divide="ignore"):
            return head.classes, head.model.predict_log_proba(head.design(rows))

    def scores(self, task: RankingTask, features) -> list[Tensor]:
        """One score vector per triple of ``task`` over its candidates (log-probabilities;
        candidates never seen in training for the attribute score below every seen one).

        Args:
            task: held-out triples.
            features: [P, F] feature rows per product (possibly damaged, see :meth:`TextFeatures.take`).
        """
        out: list[Tensor] = [torch.zeros(0)] * len(task)
        by_attribute: dict[int, list[int]] = {}
        for i, a in enumerate(task.facts[:, 1].tolist()):
            by_attribute.setdefault(a, []).append(i)
        for a, triples in by_attribute.items():
            classes, logp = self.log_probabilities(features[task.facts[triples, 0]], a)
            for row, i in zip(logp, triples):
                out[i] = _candidate_scores(classes, row, task.candidates[i].numpy())
        return out

def _candidate_scores(classes: np.ndarray, logp: np.ndarray, candidates: np.ndarray) -> Tensor:
    """[M] scores of ``candidates`` from one head's log-probabilities over ``classes``."""
    logp = np.maximum(logp, -1e4)  # a zero probability stays finite, below any real one
    floor = (logp.min() if logp.size else 0.0) - 1.0
    scores = np.full(candidates.shape[0], floor, dtype=np.float64)
    if classes.size:
        position = np.searchsorted(classes, candidates).clip(max=classes.size - 1)
        seen = classes[position] == candidates
        scores[seen] = logp[position[seen]]
    return torch.from_numpy(scores).float()


@dataclass
class FittedBaseline:
    """The chosen classifier and how it was chosen."""

    classifier: TextClassifier
    features: TextFeatures
    seconds: float
    validation: dict[str, dict]  # str(C) -> validation metrics


def fit_text_baseline(features: TextFeatures, train_snapshot: Snapshot, val: RankingTask, grid: tuple[float, ...] = C_GRID,
                      seed: int = 0) -> FittedBaseline:
    """Train a classifier for each ``C`` in ``grid`` and keep the best on the validation triples."""
    start = time.perf_counter()
    best, best_key, validation, previous = None, None, {}, None
    rows = training_rows(features, train_snapshot)
    for C in sorted(grid):
        classifier = previous = TextClassifier.fit(features, rows, C, seed, previous)
        metrics = val.metrics(classifier.scores(val, features.rows)) if len(val) else {"hits@1": 0.0, "mrr": 0.0}
        validation[str(C)] = metrics
        key = (metrics["hits@1"], metrics["mrr"])
        if best_key is None or key > best_key:
            best, best_key = classifier, key
        if not len(val):
            break
    assert best is not None
    return FittedBaseline(best, features, time.perf_counter() - start, validation)


TEXT_BASELINES = ("tfidf", "frozen-text")
"""Text baselines the protocol knows; ``frozen-text`` needs ``text.pretrained``."""
READS = "text (title, description)"


def text_features(name: str, snapshot: Snapshot, pretrained: str | None = None, max_length: int = 128) -> TextFeatures:
    """The features baseline ``name`` reads, for every product of ``snapshot``."""
    texts = product_texts(snapshot)
    if name == "tfidf":
        return tfidf_features(texts)
    if name == "frozen-text":
        if not pretrained:
            raise ValueError("the frozen-text baseline needs a pretrained text encoder: set text.pretrained in the config")
        return embedding_features(texts, pretrained, max_length)
    raise ValueError(f"unknown text baseline {name!r}; known: {', '.join(TEXT_BASELINES)}")


def evaluate_text_baseline(name: str, snapshot: Snapshot, train_snapshot: Snapshot, val: RankingTask, test: RankingTask, *,
                           conditions: tuple[str, ...], ratios: tuple[float, ...], seed: int, split_seed: int,
                           pretrained: str | None = None, max_length: int = 128, advance=None) -> dict:
    """Train a text baseline on the training graph and measure it as the protocol measures K3M.

    Args:
        name: one of :data:`TEXT_BASELINES`.
        snapshot: the whole graph (texts of every product; the filter of the candidates).
        train_snapshot: the training graph: the only triples the classifiers see.
        val: validation triples (the choice of ``C`` and the temperature).
        test: the reported triples.
        conditions, ratios, seed: the damage, as for K3M (:func:`.corruption.text_sources`).
        split_seed: recorded with the calibration.
        pretrained, max_length: the encoder of ``frozen-text``.
        advance: called with the number of measurements done.

    Returns:
        the report's entry: kind ``text``, ``clean`` metrics, ``conditions``, ``calibration``.
    """
    from .calibrated import calibration_entry
    from .corruption import text_sources

    start = time.perf_counter()
    features = text_features(name, snapshot, pretrained, max_length)
    fitted = fit_text_baseline(features, train_snapshot, val, seed=seed)
    classifier = fitted.classifier
    seconds = time.perf_counter() - start
    test_scores = classifier.scores(test, features.rows)
    clean = test.metrics(test_scores) | {"accuracy": None}
    done = 1
    if advance:
        advance(done)
    present = has_text(snapshot)
    measured: dict[str, dict] = {}
    for condition in conditions:
        measured[condition] = {}
        for ratio in ratios:
            source = text_sources(present, condition, ratio, seed)
            damaged = (source != np.arange(source.size)).any()
            measured[condition][str(ratio)] = (test.metrics(classifier.scores(test, features.take(source))) | {"accuracy": None}) if damaged else clean
            done += 1
            if advance:
                advance(done)
    _, calibration = calibration_entry(classifier.scores(val, features.rows), val, test_scores, test,
                                       f"{len(val)} validation triples of kgmm evaluate (seed {split_seed})", snapshot.content_hash())
    train = {"seconds": round(seconds, 1), "C": classifier.C, "features": int(features.rows.shape[1]),
             "val_hits@1": {c: m["hits@1"] for c, m in fitted.validation.items()}}
    return {"kind": "text", "reads": READS, "train": train, "clean": clean, "conditions": measured, "calibration": calibration}
