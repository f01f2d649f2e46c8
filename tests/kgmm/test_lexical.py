"""The lexical modality (hashed n-grams): stable hashing, the text stream's robustness, training.

Why these tests: a hash salted per process would give a saved model different buckets
when it is loaded again; an input built from the raw strings instead of the batch's text
would leak a dropped or swapped title into the model, and evaluation's missing-text numbers
would be wrong without anyone noticing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from kgmm.data.batches import batch_generator
from kgmm.evaluation.corruption import corrupt
from kgmm.modalities import ExtraInputs
from kgmm.modalities.lexical import BUCKETS, LexicalInput, bucket, char_ngrams, word_ngrams, words_of
from kgmm.objectives import compute_losses
from kgmm.training import pretrain
from tests.kgmm.k3m_testing import one_thread_per_module, ROOT, build_store, tiny_config, tiny_setup  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def setup():
    return tiny_setup(tiny_config().replace("model", extra_modalities=["lexical"]))


def test_hashing_is_the_same_in_another_process() -> None:
    features = ["w:resin", "b:steel bottle", "c:<re"]
    here = [bucket(f) for f in features]
    code = f"from kgmm.modalities.lexical import bucket; print([bucket(f) for f in {features!r}])"
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env)
        assert out.stdout.strip() == repr(here)
    assert all(1 <= b < BUCKETS for b in here)


def test_words_are_rebuilt_from_pieces_and_hashed_as_ngrams() -> None:
    assert words_of(["st", "##eel", "Bottle", "\u2581red"]) == ["steel", "bottle", "red"]
    assert len(word_ngrams(["steel", "bottle"])) == 3  # two words, one bigram
    assert len(char_ngrams(["ab"])) == 2 + 1  # "<ab>": two 3-grams, one 4-gram
    assert word_ngrams(["a", "b"]) != word_ngrams(["b", "a"])


def _parts(data, rows: list[int], **changes) -> SimpleNamespace:
    size = len(rows)
    has_text = torch.tensor([bool(data.titles[p] or data.descriptions[p]) for p in rows])
    parts = SimpleNamespace(rows=rows, has_text=has_text, drop_text=torch.zeros(size, dtype=torch.bool),
                            title_swapped=torch.zeros(size, dtype=torch.bool), partners=torch.zeros(size, 2, dtype=torch.long),
                            extra=ExtraInputs())
    for name, value in changes.items():
        setattr(parts, name, value)
    return parts


def test_the_input_follows_dropped_and_swapped_titles(setup) -> None:
    _, data, _ = setup
    builder: LexicalInput = data.inputs["lexical"]
    rows = [0, 1, 2]
    plain = _parts(data, rows)
    builder.build(plain, data, torch.Generator())
    damaged = _parts(data, rows, drop_text=torch.tensor([True, False, False]), title_swapped=torch.tensor([False, True, False]),
                     partners=torch.tensor([[0, 0], [5, 0], [0, 0]]))
    builder.build(damaged, data, torch.Generator())
    before, after = plain.extra["lexical"], damaged.extra["lexical"]
    assert before.present.all()
    assert not bool(after.present[0]) and not after.mask[0].any()  # dropped text: no lexical input either
    words, chars = builder.features(data.titles[5])  # swapped: the partner's title, its own description
    assert after.data[1, 0, : len(words)].tolist() == words and after.data[1, 1, : len(chars)].tolist() == chars
    own_words, _ = builder.features(data.descriptions[1])
    assert after.data[1, 2, : len(own_words)].tolist() == own_words
    assert after.data[2][after.data[2] > 0].tolist() == before.data[2][before.data[2] > 0].tolist()  # untouched row


def test_evaluation_damage_reaches_the_lexical_input(setup) -> None:
    _, data, _ = setup
    missing = corrupt(data, "missing_text", 1.0, seed=0)
    batch = missing.build(list(range(8)), batch_generator(0, 1), train=False)
    assert not batch.extra["lexical"].present.any() and not batch.text_present.any()


def test_a_model_reading_it_trains(setup) -> None:
    model, data, _ = setup
    config = tiny_config().replace("model", extra_modalities=["lexical"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    bag = model.stream_encoder("lexical").bag.weight
    start = bag.detach().clone()
    for step in range(3):
        batch = data.build(torch.arange(12), batch_generator(0, step), train=True)
        losses = compute_losses(model, model.train()(batch), batch, config)
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert not torch.equal(bag.detach(), start)  # the n-gram embeddings learn


def test_pretrain_saves_and_reloads_a_lexical_model(tmp_path: Path) -> None:
    from kgmm import K3M

    store = build_store(tmp_path / "example.db")
    result = pretrain(store, tiny_config(max_steps=2).replace("model", extra_modalities=["lexical"]), tmp_path / "run")
    model = K3M.from_pretrained(result.model_dir)
    assert result.steps == 2 and "lexical" in model.stream_names
