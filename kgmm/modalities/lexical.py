"""The lexical modality: hashed word and character n-grams of the text, fastText-style.

Why: a transformer trained from scratch on a thousand products learns slowly from few
examples, while a bag of n-grams (what a TF-IDF classifier reads) links "resin" in a title
to the value ``resin`` after a handful of occurrences. This stream gives the model that
shortcut beside the transformer, fused like every other stream (its own block in each
interaction layer, its weight in the modality importance, a placeholder when absent).

The input is built from the *same token tables* the text stream reads
(``data.titles`` / ``data.descriptions`` of the batch builder), with the same robustness
decisions: a row whose text is dropped has no lexical input, a row whose title is swapped
reads its partner's title. Evaluation damage (:func:`kgmm.evaluation.corruption.corrupt`)
edits those tables, so missing or noisy text reaches this stream exactly as it reaches the
transformer; reading the raw strings instead would leak a hidden title.

Words are rebuilt from the WordPiece pieces (``##`` continues a word; ``▁`` / ``Ġ`` start
one), then hashed with :func:`zlib.crc32` (stable across processes, unlike ``hash()``):
word 1-2-grams and character 3-5-grams of ``<word>``, into :data:`BUCKETS` buckets
(bucket 0 is padding). Four bags per product (title words, title characters, description
words, description characters) become four stream tokens: an ``EmbeddingBag`` mean each,
normalised, projected, plus a learned vector per bag kind.

Enable with ``model.extra_modalities: [lexical]``.
"""

from __future__ import annotations

import functools
import zlib

import torch
from torch import Tensor, nn

from graph_store import Snapshot

from ..config import Config
from .base import Modality, ModalInput, ModalityEncoder

BUCKETS = 2**18
"""Hash buckets shared by word and character n-grams (bucket 0 pads)."""
EVIDENCE_BUCKETS = 2**17
"""The smaller table of the link score's lexical classifier (:mod:`kgmm.model.evidence`)."""
GROUPS = 4
"""Bags per product: title words, title characters, description words, description characters."""
WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (3, 4, 5)


def bucket(feature: str) -> int:
    """The bucket of one n-gram feature in [1, BUCKETS): deterministic in every process."""
    return 1 + zlib.crc32(feature.encode("utf-8")) % (BUCKETS - 1)


def fold(buckets: list[int], size: int) -> list[int]:
    """Buckets of :data:`BUCKETS` folded into ``[1, size)`` (0 still pads)."""
    return [1 + (b - 1) % (size - 1) for b in buckets]


def text_words(words: list[str]) -> list[int]:
    """Sorted unique buckets of the words that can name a value (letters or digits in them)."""
    return sorted({bucket("w:" + w) for w in words if any(ch.isalnum() for ch in w)})


def name_features(tokenizer, names: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Per name (a value's), its word buckets (:func:`text_words`) and its n-gram buckets
    folded into :data:`EVIDENCE_BUCKETS`, read through ``tokenizer`` as product texts are."""
    special = set(tokenizer.all_special_ids)
    out_words, out_ngrams = [], []
    for ids in tokenizer(names, add_special_tokens=False)["input_ids"] if names else []:
        words = words_of([p for i, p in zip(ids, tokenizer.convert_ids_to_tokens(ids)) if i not in special])
        out_words.append(text_words(words))
        out_ngrams.append(fold(word_ngrams(words) + char_ngrams(words), EVIDENCE_BUCKETS))
    return out_words, out_ngrams


def words_of(pieces: list[str]) -> list[str]:
    """Words rebuilt from tokenizer pieces: ``##x`` continues the previous word,
    ``▁x`` / ``Ġx`` (SentencePiece, byte-level BPE) start a new one."""
    words: list[str] = []
    for piece in pieces:
        if piece.startswith("##") and words:
            words[-1] += piece[2:]
        elif piece[:1] in ("\u2581", "\u0120"):
            if piece[1:]:
                words.append(piece[1:])
        else:
            words.append(piece)
    return [w.lower() for w in words if w]


def word_ngrams(words: list[str]) -> list[int]:
    """Buckets of word 1-grams and 2-grams, in text order."""
    out = [bucket("w:" + w) for w in words] if 1 in WORD_NGRAMS else []
    if 2 in WORD_NGRAMS:
        out += [bucket("b:" + a + " " + b) for a, b in zip(words, words[1:])]
    return out


def char_ngrams(words: list[str]) -> list[int]:
    """Buckets of character 3-5-grams of each ``<word>`` (fastText's subwords)."""
    out: list[int] = []
    for word in words:
        out += _word_char_ngrams(word)
    return out


@functools.lru_cache(maxsize=2**18)
def _word_char_ngrams(word: str) -> tuple[int, ...]:
    """One word's character n-gram buckets, memoised: a catalog repeats its words (brands, colours,
    units) across products, and hashing each n-gram again was most of reading a large catalog's text."""
    marked = f"<{word}>"
    return tuple(bucket(f"c:{marked[i:i + n]}") for n in CHAR_NGRAMS for i in range(len(marked) - n + 1))


class LexicalInput:
    """Hashed n-gram ids ``[B, 4, N]`` (0-padded), their bag mask ``[B, 4]`` and ``present``
    (text shown and not dropped) from the batch builder's token tables."""

    name = "lexical"

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.vocabulary: list[str] = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.special = set(tokenizer.all_special_ids)
        self._cache: dict[tuple[int, ...], tuple[list[int], list[int]]] = {}

    def features(self, ids: list[int]) -> tuple[list[int], list[int]]:
        """(word buckets, character buckets) of one token list; cached by its ids."""
        key = tuple(ids)
        if key not in self._cache:
            pieces = [self.vocabulary[i] for i in ids if i not in self.special and 0 <= i < len(self.vocabulary)]
            words = words_of(pieces)
            self._cache[key] = (word_ngrams(words), char_ngrams(words))
        return self._cache[key]

    def build(self, parts, data, generator: torch.Generator) -> None:
        shown = parts.has_text & ~parts.drop_text
        bags: list[list[list[int]]] = []
        for i, p in enumerate(parts.rows):
            if not bool(shown[i]):
                bags.append([[] for _ in range(GROUPS)])
                continue
            title = data.titles[int(parts.partners[i, 0])] if bool(parts.title_swapped[i]) else data.titles[p]
            bags.append([*self.features(title), *self.features(data.descriptions[p])])
        parts.extra[self.name] = self.make(bags)

    @staticmethod
    def make(bags: list[list[list[int]]]) -> ModalInput:
        """Pad per-row bags to one tensor; a row is present when any bag is non-empty."""
        width = max([1] + [len(b) for row in bags for b in row])
        ids = torch.zeros(len(bags), GROUPS, width, dtype=torch.long)
        for i, row in enumerate(bags):
            for g, b in enumerate(row):
                if b:
                    ids[i, g, : len(b)] = torch.tensor(b, dtype=torch.long)
        mask = ids[:, :, 0] > 0  # [B, 4]
        return ModalInput(ids, mask, mask.any(1))


class LexicalEncoder(ModalityEncoder):
    """Four bag tokens: mean n-gram embedding, normalised and projected, plus its kind."""

    name = "lexical"

    def __init__(self, hidden: int, config: Config, shared: dict[str, nn.Module]) -> None:
        super().__init__(hidden, config, shared)
        self.bag = nn.EmbeddingBag(BUCKETS, hidden, mode="mean", padding_idx=0)
        self.norm = nn.LayerNorm(hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.kind = nn.Parameter(torch.zeros(GROUPS, hidden))

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        p, groups, width = data.shape
        bags = self.bag(data.reshape(p * groups, width)).view(p, groups, -1)  # [p, 4, d]
        return self.proj(self.norm(bags)) + self.kind  # [p, 4, d]


LEXICAL = Modality("lexical", LexicalInput, LexicalEncoder)
