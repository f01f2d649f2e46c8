"""What a product's text says of a checked value: phrase matching, naming rates, the ratio."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from tests.kgmm.k3m_testing import example_snapshot

from graph_store import SourceCode
from kgmm.completion.mentions import CHANCE_NAMED, Mentions, phrase


@pytest.fixture(scope="module")
def snapshot():
    return example_snapshot()


def test_a_phrase_ignores_case_punctuation_and_spacing_but_keeps_word_order() -> None:
    assert phrase("Stainless-Steel,  GREY/Black") == " stainless steel grey black "
    assert phrase(None) == phrase("") == "  "
    assert phrase("Café 3.5 L") == " café 3 5 l "


def test_a_value_is_named_only_by_its_whole_words_in_order(snapshot) -> None:
    edge = int(np.flatnonzero(snapshot.edge_source == SourceCode.CATALOG)[0])
    p, v = int(snapshot.edge_product[edge]), int(snapshot.edge_value[edge])
    name = snapshot.values[v][1]
    words = phrase(name).split()

    def with_title(title: str) -> Mentions:
        titles = list(snapshot.titles)
        titles[p] = title
        descriptions = list(snapshot.descriptions)
        descriptions[p] = ""
        return Mentions(dataclasses.replace(snapshot, titles=titles, descriptions=descriptions))

    assert with_title(f"A THING, {name.upper()}!").named(p, v)
    assert not with_title("nothing of the sort").named(p, v)
    assert not with_title(f"{words[0]}x " + " ".join(words[1:])).named(p, v)  # a longer word is another word
    if len(words) > 1:
        assert not with_title(" ".join(reversed(words))).named(p, v)


def test_the_naming_rate_follows_how_often_an_attribute_s_values_are_written_out(snapshot) -> None:
    """Titles that name every brand give brand a rate near 1: silence then speaks against a
    brand, and a named brand is vouched for; titles that name none give a rate near 0."""
    brand = snapshot.attributes.index("brand")
    facts = (snapshot.edge_attribute == brand) & (snapshot.edge_source == SourceCode.CATALOG)
    of_product: dict[int, str] = {}
    for p, v in zip(snapshot.edge_product[facts].tolist(), snapshot.edge_value[facts].tolist()):
        of_product[p] = f"{of_product.get(p, '')} {snapshot.values[v][1]}."
    naming = dataclasses.replace(snapshot, titles=[of_product.get(p, "") for p in range(snapshot.num_products)],
                                 descriptions=[""] * snapshot.num_products)
    silent = dataclasses.replace(naming, titles=[""] * snapshot.num_products)
    named, unnamed = Mentions(naming), Mentions(silent)
    facts = int(facts.sum())
    assert named.rate[brand] == pytest.approx((facts + 1) / (facts + 2))
    assert unnamed.rate[brand] == pytest.approx(1 / (facts + 2))
    p = next(iter(of_product))
    v = int(snapshot.edge_value[(snapshot.edge_product == p) & (snapshot.edge_attribute == brand)][0])
    other = next(u for u in range(len(snapshot.values)) if snapshot.value_attribute[u] == brand and phrase(snapshot.values[u][1]) not in phrase(of_product[p]))
    assert named.named(p, v) and not named.named(p, other)
    vouched, silent_on = named.log_ratio(brand, True), named.log_ratio(brand, False)
    assert vouched == pytest.approx(math.log(CHANCE_NAMED / named.rate[brand])) and vouched < -3  # named: vouched for
    assert silent_on == pytest.approx(math.log((1 - CHANCE_NAMED) / (1 - named.rate[brand]))) and silent_on > 3  # silent: suspect
    assert not unnamed.named(p, v) and abs(unnamed.log_ratio(brand, False)) < 0.05  # an attribute never written out: silence says nothing


def test_rates_are_measured_on_an_even_sample_of_products(snapshot) -> None:
    """A sample of every k-th product (deterministic, the same in every shard)."""
    full, sampled = Mentions(snapshot), Mentions(snapshot, sample=40)
    assert sampled.rate.shape == full.rate.shape
    assert not np.allclose(sampled.rate, full.rate)
    np.testing.assert_array_equal(Mentions(snapshot, sample=40).rate, sampled.rate)
