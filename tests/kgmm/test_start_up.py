"""Start-up that streams (issue 15): token tables read lazily, a bounded tokenizer sample,
the first-step record; each gives what the eager way gave on a small catalog."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.kgmm.k3m_testing import example_snapshot

from kgmm.data.tokens import TokenTable
from kgmm.text import train_wordpiece
from kgmm.training.pipeline import tokenizer_sample
from kgmm.training.startup import StartupClock


@pytest.fixture(scope="module")
def tokenizer():
    snapshot = example_snapshot()
    return train_wordpiece(tokenizer_sample(snapshot), 800)


def test_token_table_rows_equal_eager_tokenisation_and_only_read_chunks_are_tokenised(tokenizer) -> None:
    titles = [*example_snapshot().titles, "", "   "]
    encode = lambda texts: tokenizer(texts, add_special_tokens=False, truncation=True, max_length=12)["input_ids"]  # noqa: E731
    eager = encode(titles)
    table = TokenTable(titles, encode, chunk=3)
    assert table.tokenised == 0
    assert table[4] == eager[4] and table.tokenised == 3  # only the chunk of row 4 (rows 3-5)
    assert list(table) == eager and table[-1] == eager[-1] == [] and table[1:3] == eager[1:3]
    assert table.nbytes == 4 * sum(map(len, eager)) + 8 * (len(titles) + len(range(0, len(titles), 3)))
    with pytest.raises(IndexError):
        table[len(titles)]


def test_tokenizer_sample_is_the_whole_small_catalog_and_an_even_stride_of_a_large_one() -> None:
    snapshot = example_snapshot()
    whole = [t for pair in zip(snapshot.titles, snapshot.descriptions) for t in pair]
    assert tokenizer_sample(snapshot) == whole  # under the limit: every product, so its vocabulary is unchanged
    sample = tokenizer_sample(snapshot, limit=3)
    stride = -(-snapshot.num_products // 3)
    expected = [t for p in range(0, snapshot.num_products, stride) for t in (snapshot.titles[p], snapshot.descriptions[p])]
    assert sample == expected and len(sample) <= 6
    blank = dataclasses.replace(snapshot, titles=[""] * snapshot.num_products)
    assert tokenizer_sample(blank, limit=3)[0::2] == [""] * len(expected[0::2])


def test_startup_clock_writes_the_first_step_once(tmp_path: Path) -> None:
    clock = StartupClock()
    clock.path = tmp_path / "startup.json"
    with clock.phase("tokenizer_s"):
        pass
    with clock.phase("tokenizer_s"):
        pass
    clock.on_start(0, 10)
    clock.on_step(1)
    first = json.loads(clock.path.read_text())
    clock.on_step(2)
    assert json.loads(clock.path.read_text()) == first and first["step"] == 1
    assert first["first_step_s"] >= first["phases"]["before_trainer_s"] >= 0
    assert first["peak_rss_mb"] > 10 and set(first["phases"]) == {"tokenizer_s", "before_trainer_s"}


def test_a_mark_before_the_trainer_is_kept_once_beside_the_first_step(tmp_path: Path) -> None:
    clock = StartupClock()
    clock.path = tmp_path / "startup.json"
    clock.mark("first_evidence_step")
    noted = dict(clock.marks)
    clock.mark("first_evidence_step")  # a later call changes nothing
    assert clock.marks == noted
    clock.on_start(0, 10)
    clock.on_step(1)
    record = json.loads(clock.path.read_text())
    assert record["first_evidence_step_s"] <= record["first_step_s"]
    assert 10 < record["first_evidence_step_peak_rss_mb"] <= record["peak_rss_mb"]
