"""The table modality (SCALE): the product's (attribute, value) list as its own token sequence,
``[CLS] brand: nike [SEP] color: red [SEP] ...``, read through the shared text transformer.

The input is serialised from the batch's pair tokens *after* link-prediction facts were held
out and knowledge was dropped or withheld, so a held-out fact never reaches the model
through the table. The encoder shares the text transformer rather than bringing a second
BERT (the meaning of "red" or "cotton" is the same as in titles); the table gets its own
projection into the joint space and a learned table-type vector.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graph_store import Snapshot

from ..config import Config
from ..text import SpecialIds
from .base import Modality, ModalInput, ModalityEncoder


class TableInput:
    """``[CLS] attribute: value [SEP] ...`` token ids from the batch's visible pairs."""

    name = "table"

    def __init__(self, snapshot: Snapshot, tokenizer, config: Config, media: dict | None = None) -> None:
        self.special = SpecialIds.of(tokenizer)
        self.max_length = config.text.max_length
        texts = [f"{attribute}: {value}" for attribute, value in snapshot.values]
        self.pieces: list[list[int]] = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []  # per value id

    def build(self, parts, data, generator: torch.Generator) -> None:
        parts.extra[self.name] = self.make(parts.rows, parts.kv_value, parts.kv_mask)

    def make(self, rows: list[int], kv_value: Tensor, kv_mask: Tensor) -> ModalInput:
        s = self.special
        sequences = []
        for values, real in zip(kv_value.tolist(), kv_mask.tolist()):
            tokens = [s.cls]
            for value, ok in zip(values, real):
                if ok and len(tokens) < self.max_length:
                    tokens += [*self.pieces[value], s.sep]
            sequences.append(tokens[: self.max_length])
        length = max([2] + [len(q) for q in sequences])
        ids = torch.full((len(rows), length), s.pad, dtype=torch.long)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, q in enumerate(sequences):
            ids[i, : len(q)] = torch.tensor(q, dtype=torch.long)
            mask[i, : len(q)] = True
        present = mask.sum(1) > 1  # more than the [CLS]
        return ModalInput(ids, mask, present)


class TableEncoder(ModalityEncoder):
    """``[CLS] attribute: value [SEP] ...`` through the shared text transformer."""

    name = "table"

    def __init__(self, hidden: int, config: Config, shared: dict[str, nn.Module]) -> None:
        super().__init__(hidden, config, shared)
        self.proj = nn.Linear(shared["text"].transformer.config.hidden_size, hidden)
        self.kind = nn.Parameter(torch.zeros(hidden))

    def encode(self, data: Tensor, mask: Tensor) -> Tensor:
        transformer = self._shared["text"].transformer
        kwargs = {"token_type_ids": torch.zeros_like(data)} if self._shared["text"].uses_token_types else {}
        states = transformer(input_ids=data, attention_mask=mask.long(), **kwargs).last_hidden_state  # [p, T, w]
        return self.proj(states) + self.kind  # [p, T, d]


TABLE = Modality("table", TableInput, TableEncoder)
