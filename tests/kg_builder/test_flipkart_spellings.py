"""Real spellings from the Flipkart sample (../shared/data/flipkart-1050) and their normal forms.

Each pair was read off the sample's product_specifications (or titles, for the ones marked
so); the expected form is what a person reading the spelling means, in canonical units, or
the spelling left alone (folded) when it is not a measurement we can read with certainty.
"""

from __future__ import annotations

import csv

import pytest

from kg_builder.records.normalize import normalize_value
from tests.conftest import FLIPKART

SPELLINGS = [
    # weights
    ("0.8 kg", "800 g"),
    ("0.3 Kg", "300 g"),
    (".237 kg", "237 g"),
    ("0.04 kg", "40 g"),
    ("0.832 g", "0.832 g"),
    ("7.66 kg", "7660 g"),
    ("1000 g", "1000 g"),
    ("40000 g", "40000 g"),
    ("150 kg", "150000 g"),
    ("4.5 g", "4.5 g"),
    # lengths
    ("10 Cm", "10 cm"),
    ("9 Cm", "9 cm"),
    ("108 mm", "10.8 cm"),
    ("0.0095 cm", "0.0095 cm"),
    ("6.8580000000000005 cm", "6.858 cm"),
    ("196.166666666667 cm", "196.167 cm"),
    ("9.825000000000001 inch", "24.9555 cm"),
    ("7.074 inch", "17.968 cm"),
    ("15.6 inch", "39.624 cm"),
    ("29.90 inch", "75.946 cm"),
    ("0 cm", "0 cm"),
    ("0 m", "0 cm"),
    ("2200 m", "220000 cm"),
    ("10 m", "1000 cm"),
    ("317.5 mm", "31.75 cm"),
    ("Case Size 38 Mm", "case size 3.8 cm"),
    ("LENGTH 215 MM", "length 21.5 cm"),
    ("Dial Diameter - 26.5 mm", "dial diameter - 2.65 cm"),
    ("31.20 mm Case Diameter", "3.12 cm case diameter"),
    ("15 cm cm", "15 cm"),  # a duplicated unit is one unit
    # sizes with two spellings, products of sizes, ranges
    ("23 inch / 40 cm", "58.42 cm / 40 cm"),
    ("86 inch / 220 cm", "218.44 cm / 220 cm"),
    ("22.7 x 25.4 x 5 inch", "57.658 x 64.516 x 12.7 cm"),
    ("33.1 x 32.6 x 4.4 cm", "33.1 x 32.6 x 4.4 cm"),
    ("12.7 X 17.8 cm", "12.7 x 17.8 cm"),
    ("18x13 cm", "18 x 13 cm"),
    ("30 x 30 cm", "30 x 30 cm"),
    ("6.5 x 4.4 mm", "0.65 x 0.44 cm"),
    (".5-3.5 m", "50-350 cm"),
    (".25-2.5 m", "25-250 cm"),
    ("L*B*H-20x10x35 cms", "l*b*h-20x10x35 cms"),  # glued to a label: left as written
    ("Mens Bath Towels-150 cmX75 cm", "mens bath towels-150 cmx75 cm"),
    # volumes
    ("1 L L", "1000 ml"),
    ("0.7 L", "700 ml"),
    ("5.5 l", "5500 ml"),
    ("2000 L", "2000000 ml"),
    ("147.5 ml", "147.5 ml"),
    ("1 Bottle of 1000 ML", "1 bottle of 1000 ml"),
    ("800 ML Bottle", "800 ml bottle"),
    ("1500 ml, 2.25 L", "1500 ml, 2.25 l"),  # "l" inside text is too ambiguous to convert
    # measurements inside text
    ("12 Inch Pizza, 6 Inch Pie", "30.48 cm pizza, 15.24 cm pie"),
    ("2 Ice Dive Deodorant Spray - 96 g", "2 ice dive deodorant spray - 96 g"),
    ("Two Apple - 50 g, Fresh Mint - 50 g", "two apple - 50 g, fresh mint - 50 g"),
    ("1 Roaster 26cm", "1 roaster 26 cm"),
    ("LCD Display of1.5 inch Size", "lcd display of1.5 inch size"),  # glued to a word
    ("3.5 mm Jack", "0.35 cm jack"),
    # not measurements: unit letters that are not units, ranges without units, codes
    ("3g Data Card", "3g data card"),
    ("3D 1440 - 3G Data Card", "3d 1440 - 3g data card"),
    ("3G Routers", "3g routers"),
    ("4G Routers", "4g routers"),
    ("64-bit", "64-bit"),
    ("0 - 12 Months", "0 - 12 months"),
    ("18 - 24 month", "18 - 24 month"),
    ("100 - 240 V", "100 - 240 v"),
    ("10-90% (non-condensing)", "10-90% (non-condensing)"),
    ("95% cotton-5%wool", "95% cotton-5%wool"),
    ("10/100 Mbps", "10/100 mbps"),
    ("64/128 bit WEP, WPA, WPA2, WPS", "64/128 bit wep, wpa, wpa2, wps"),
    ("-10DegC - 50DegC degree C", "-10degc - 50degc degree c"),  # the sign stays
    ("DDR3-1333, DDR3L-1333 @ 1.5V", "ddr3-1333, ddr3l-1333 @ 1.5v"),
    ("MS004PKTBL-4'X6'", "ms004pktbl-4'x6'"),
    ("Super Soft Blanket - 18", "super soft blanket - 18"),
    ("1 Bedsheet,2 Pillow Cover", "1 bedsheet,2 pillow cover"),
    ("Number of Cavities 3, 4, 5", "number of cavities 3, 4, 5"),
]
"""(spelling from the sample, expected normal form)."""


@pytest.mark.parametrize(("raw", "expected"), SPELLINGS, ids=[raw for raw, _ in SPELLINGS])
def test_flipkart_spelling_has_its_normal_form(raw: str, expected: str) -> None:
    assert normalize_value(raw) == expected


def test_the_table_holds_sixty_real_spellings_from_the_sample() -> None:
    csv.field_size_limit(2**31 - 1)
    with open(FLIPKART, encoding="utf-8", newline="") as handle:
        text = " ".join(" ".join(row) for row in csv.reader(handle)).replace('\\"', '"')
    missing = [raw for raw, _ in SPELLINGS if raw not in text and raw != "Number of Cavities 3, 4, 5"]
    assert not missing, f"not in the Flipkart sample: {missing}"
    assert len(SPELLINGS) >= 60
