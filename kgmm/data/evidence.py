"""The batch input of the link score's evidence terms (:mod:`kgmm.model.evidence`).

Per product: the lexical classifier's n-gram buckets (word 1-2-grams and character
3-5-grams of title and description), and the word buckets of the title and of the
description that value names are matched against. They are read from the batch builder's
token tables with the text stream's decisions (a dropped text gives nothing, a swapped
title is the partner's), so training robustness and evaluation damage reach these terms
exactly as they reach the transformer.
"""

from __future__ import annotations

import numpy as np
import torch

from ..modalities.base import ModalInput
from ..modalities.lexical import EVIDENCE_BUCKETS, char_ngrams, fold, text_words, word_ngrams, words_of

NAME = "evidence"
"""Key of the input in a batch's ``extra`` inputs."""
DESCRIPTION_TOKENS = 256
"""Description tokens the evidence reads (the transformer reads ``text.max_length`` of title + description)."""


CACHED_TEXTS = 100_000
"""Texts whose features are kept (cleared beyond): titles repeat across a catalog's batches and
passes, but a million products' features would take gigabytes."""


class EvidenceInput:
    """Builds ``extra["evidence"]``: ``data`` [B, 3, W] (n-grams, title words, description
    words; 0 pads), ``mask`` [B, 3], ``present`` [B] (text shown)."""

    def __init__(self, tokenizer) -> None:
        self.vocabulary: list[str] = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.special = set(tokenizer.all_special_ids)
        self._cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def features(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(n-gram buckets, sorted word buckets) of one token list, as int32 arrays; cached by its
        ids (as bytes: a cached text costs 4 bytes a token and a bucket, not a Python int each)."""
        key = np.asarray(ids, dtype=np.int32).tobytes()
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= CACHED_TEXTS:  # a pass over a large catalog: memory stays bounded
                self._cache.clear()
            pieces = [self.vocabulary[i] for i in ids if i not in self.special and 0 <= i < len(self.vocabulary)]
            words = words_of(pieces)
            found = self._cache[key] = (np.asarray(fold(word_ngrams(words) + char_ngrams(words), EVIDENCE_BUCKETS), dtype=np.int32),
                                        np.asarray(text_words(words), dtype=np.int32))
        return found

    def clear(self) -> None:
        """Forget the cached features (a pass over a large catalog keeps memory bounded)."""
        self._cache.clear()

    def build(self, parts, data, generator: torch.Generator) -> None:
        shown = parts.has_text & ~parts.drop_text
        empty = np.zeros(0, dtype=np.int32)
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for i, p in enumerate(parts.rows):
            if not bool(shown[i]):
                rows.append((empty, empty, empty))
                continue
            title = data.titles[int(parts.partners[i, 0])] if bool(parts.title_swapped[i]) else data.titles[p]
            title_ngrams, title_words = self.features(title)
            description_ngrams, description_words = self.features(data.descriptions[p])
            rows.append((np.concatenate([title_ngrams, description_ngrams]), title_words, description_words))
        width = max([1] + [len(g) for row in rows for g in row])
        ids = torch.zeros(len(rows), 3, width, dtype=torch.long)
        for i, row in enumerate(rows):
            for g, values in enumerate(row):
                if len(values):
                    ids[i, g, : len(values)] = torch.from_numpy(values)
        mask = ids[:, :, 0] > 0
        parts.extra[NAME] = ModalInput(ids, mask, shown.clone())
