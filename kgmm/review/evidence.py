"""Why a value was proposed, shown beside it so an analyst sees the case before deciding.

Two kinds of evidence, both from the store alone (no model needed, so the page works on any
store and explains even a run whose model is gone):

* **words**: the places in the product's title and description that mention the value (each
  word of the value, matched case-insensitively on word boundaries), with a little context;
* **neighbours**: the few catalog products most similar to this one (TF-IDF over title and
  category, cosine) that carry the value as a fact. If the nearest look-alikes have it, the
  proposal is plausible; if none do, the model is reaching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from graph_store import FACT_SOURCES, GraphStore, ProductNode

CONTEXT = 60  # characters of description shown either side of a match
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Snippet:
    """A piece of text cut into (text, matched) parts, for the template to mark the matches."""

    field: str
    parts: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Neighbour:
    product: ProductNode
    similarity: float


def value_words(value: str) -> list[str]:
    """The words of a value worth looking for (single letters and digits alone say nothing)."""
    return [w for w in _WORD.findall(value.casefold()) if len(w) > 1 or not w.isalnum()]


def supporting_words(product: ProductNode, value: str, max_snippets: int = 3) -> list[Snippet]:
    """Snippets of the title (whole) and description (around each match) that mention ``value``."""
    words = value_words(value)
    if not words:
        return []
    pattern = re.compile(r"(?<![^\W_])(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")(?![^\W_])",
                         re.IGNORECASE)
    out = []
    if pattern.search(product.title):
        out.append(Snippet("title", _cut(product.title, pattern)))
    for match in list(pattern.finditer(product.description))[: max_snippets]:
        start, end = max(0, match.start() - CONTEXT), min(len(product.description), match.end() + CONTEXT)
        text = ("…" if start else "") + product.description[start:end] + ("…" if end < len(product.description) else "")
        snippet = Snippet("description", _cut(text, pattern))
        if not out or out[-1].parts != snippet.parts:
            out.append(snippet)
    return out[: max_snippets + 1]


def _cut(text: str, pattern: re.Pattern) -> tuple[tuple[str, bool], ...]:
    parts, last = [], 0
    for match in pattern.finditer(text):
        if match.start() > last:
            parts.append((text[last:match.start()], False))
        parts.append((match.group(0), True))
        last = match.end()
    if last < len(text):
        parts.append((text[last:], False))
    return tuple(parts)


class SimilarProducts:
    """Nearest catalog products carrying a value, by TF-IDF over titles and categories.

    Built once from the store (fast: a thousand products take well under a second);
    :meth:`refresh_facts` re-reads who carries which value after decisions added facts.
    """

    def __init__(self, store: GraphStore) -> None:
        self.products = list(store.iter_products())
        self.position = {p.id: i for i, p in enumerate(self.products)}
        texts = [f"{p.title} {p.title} {' '.join(p.category)}" for p in self.products]  # the title counts double
        self.vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1, token_pattern=r"(?u)\b\w\w+\b")
        self.matrix = self.vectorizer.fit_transform(texts) if any(t.strip() for t in texts) else None
        self.carriers: dict[tuple[str, str], list[int]] = {}
        self.refresh_facts(store)

    def refresh_facts(self, store: GraphStore) -> None:
        carriers: dict[tuple[str, str], set[int]] = {}
        for edge in store.iter_triples(FACT_SOURCES):
            index = self.position.get(edge.product_id)
            if index is not None:
                carriers.setdefault((edge.attribute, edge.value), set()).add(index)
        self.carriers = {key: sorted(found) for key, found in carriers.items()}

    def neighbours(self, product_id: str, attribute: str, value: str, k: int = 3) -> list[Neighbour]:
        """Up to ``k`` other products with ``attribute = value`` as a fact, most similar first."""
        me = self.position.get(product_id)
        candidates = [i for i in self.carriers.get((attribute, value), []) if i != me]
        if me is None or not candidates or self.matrix is None:
            return []
        similarity = (self.matrix[candidates] @ self.matrix[me].T).toarray().ravel()
        order = np.lexsort((np.array(candidates), -similarity))[:k]
        return [Neighbour(self.products[candidates[i]], float(similarity[i])) for i in order if similarity[i] > 0]
