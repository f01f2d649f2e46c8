"""Tokenizers: a WordPiece vocabulary trained on the catalog, or a pretrained one.

Training a vocabulary on the catalog's own titles and descriptions takes seconds and
fits product text (brands, sizes, model numbers) far better than a general-purpose
vocabulary of the same size. Either way the tokenizer is saved next to the model
(``tokenizer.json``) and reloaded as a ``transformers.PreTrainedTokenizerFast``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError, ConfigError

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK]


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens the model and the masking need."""

    pad: int
    cls: int
    sep: int
    mask: int
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> SpecialIds:
        ids = {name: tokenizer.convert_tokens_to_ids(getattr(tokenizer, f"{name}_token")) for name in ("pad", "cls", "sep", "mask")}
        if any(v is None or v < 0 for v in ids.values()):
            raise ConfigError("the tokenizer lacks one of [PAD], [CLS], [SEP], [MASK]; a BERT-family tokenizer is needed")
        return cls(vocab_size=len(tokenizer), **ids)


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2):
    """Train a lower-cased BERT WordPiece tokenizer on ``texts``, deterministically.

    The vocabulary is learnt by byte-pair merges over "##"-prefixed continuation
    characters, as ``tokenizers``' ``WordPieceTrainer`` does, but with ties broken by
    the symbols themselves: that trainer breaks ties by hash order, so the same catalog
    gave a different vocabulary on every run (tokenizers 0.23), and two runs with one
    seed would not train the same model. Normalisation, pre-tokenisation, the WordPiece
    model and the [CLS]/[SEP] template are ``tokenizers``' own.

    Args:
        texts: the catalog's titles and descriptions.
        vocab_size: most tokens in the vocabulary, special tokens included (a small
            catalog may yield fewer).
        min_frequency: merges seen fewer times than this are not learnt.

    Returns:
        A ``PreTrainedTokenizerFast`` with BERT's special tokens and pair template.
    """
    from collections import Counter

    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        if text:
            counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = learn_wordpiece_vocab(counts, vocab_size, min_frequency)
    tokenizer = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token=UNK))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = vocab.index(CLS), vocab.index(SEP)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1", special_tokens=[(CLS, cls_id), (SEP, sep_id)]
    )
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, cls_token=CLS, sep_token=SEP, mask_token=MASK
    )


def learn_wordpiece_vocab(word_counts: dict[str, int], vocab_size: int, min_frequency: int = 2) -> list[str]:
    """Special tokens, every character (plain and "##"), then merged pieces by count.

    Each step merges the most frequent adjacent pair of symbols (ties: the smaller pair
    of strings), updating pair counts only in the words that contain it.
    """
    import heapq
    from collections import defaultdict
    from itertools import pairwise

    words = sorted(word_counts)
    freq = [word_counts[w] for w in words]
    seqs = [[w[0], *(f"##{c}" for c in w[1:])] for w in words]
    vocab = list(SPECIAL_TOKENS)
    vocab += sorted({s for seq in seqs for s in seq} - set(vocab))
    known = set(vocab)
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    pair_words: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, seq in enumerate(seqs):
        for pair in pairwise(seq):
            pair_count[pair] += freq[i]
            pair_words[pair].add(i)
    heap = [(-count, pair) for pair, count in pair_count.items()]
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -negative:
            continue  # stale entry: the count changed since it was pushed
        if -negative < min_frequency:
            break
        merged = pair[0] + pair[1][2:]
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
        changed: set[tuple[str, str]] = set()
        for i in sorted(pair_words.pop(pair, ())):
            seq = seqs[i]
            for old in pairwise(seq):
                pair_count[old] -= freq[i]
                changed.add(old)
            out, j = [], 0
            while j < len(seq):
                if j + 1 < len(seq) and (seq[j], seq[j + 1]) == pair:
                    out.append(merged)
                    j += 2
                else:
                    out.append(seq[j])
                    j += 1
            seqs[i] = out
            for new in pairwise(out):
                pair_count[new] += freq[i]
                pair_words[new].add(i)
                changed.add(new)
        pair_count.pop(pair, None)
        for other in changed:
            if pair_count.get(other, 0) > 0:
                heapq.heappush(heap, (-pair_count[other], other))
            else:
                pair_count.pop(other, None)
    return vocab


def load_tokenizer(directory: str | Path):
    """Load the tokenizer saved in a model or checkpoint directory (or a pretrained one).

    Raises:
        CheckpointError: the directory has no readable tokenizer.
    """
    from transformers import PreTrainedTokenizerFast

    directory = Path(directory)
    if not (directory / "tokenizer.json").is_file():
        raise CheckpointError(f"{directory}: no tokenizer.json (not a kgmm model or a BERT-family directory)")
    try:
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds here
        raise CheckpointError(f"{directory}: cannot load tokenizer.json ({type(err).__name__}: {err})") from None
    for name, token in (("pad", PAD), ("cls", CLS), ("sep", SEP), ("mask", MASK), ("unk", UNK)):
        if getattr(tokenizer, f"{name}_token", None) is None and token in tokenizer.get_vocab():
            setattr(tokenizer, f"{name}_token", token)
    return tokenizer


def save_tokenizer(tokenizer, directory: str | Path) -> None:
    """Write ``tokenizer.json`` (and transformers' small side files) into ``directory``."""
    tokenizer.save_pretrained(str(directory))
