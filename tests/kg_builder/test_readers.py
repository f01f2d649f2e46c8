"""Catalog readers: canonical JSONL, mapped CSV, the Flipkart preset and schema.org RDF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg_builder import CatalogError, CatalogRecord, ColumnMapping, RowProblem, open_catalog
from kg_builder.readers.flipkart import parse_category_tree, parse_specifications

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def read(path: Path, **kw) -> tuple[list[CatalogRecord], list[RowProblem]]:
    items = list(open_catalog(path, **kw).rows())
    return [i for i in items if isinstance(i, CatalogRecord)], [i for i in items if isinstance(i, RowProblem)]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_jsonl_fields_lists_and_properties(tmp_path: Path) -> None:
    line = {
        "id": 7,
        "title": "Mug",
        "category": ["Kitchen", "Mugs"],
        "attributes": {"Color": ["Red", "Blue"], "Capacity": 350, "Dishwasher Safe": True, "bad": {"x": 1}},
        "price": 9.5,
        "extracted": [{"attribute": "x"}],
    }
    records, problems = read(write(tmp_path / "c.jsonl", json.dumps(line) + "\n\n"))
    [record] = records
    assert record.id == "7" and record.category == ("Kitchen", "Mugs")
    assert record.attributes == [("Color", "Red"), ("Color", "Blue"), ("Capacity", "350"), ("Dishwasher Safe", "yes")]
    assert record.properties == {"price": 9.5}  # derived "extracted" values are not catalog facts
    assert [(p.field, p.severity) for p in problems] == [("attributes.bad", "warning")]


def test_jsonl_row_problems_name_line_and_field(tmp_path: Path) -> None:
    text = b'{"id": "a", "title": "ok"}\n{"id": "b", "title": \n{"title": "no id"}\n[1, 2]\n{"id": "c", "title": "caf\xe9"}\n'
    records, problems = read(write(tmp_path / "c.jsonl", text))
    assert [r.id for r in records] == ["a"]
    assert [(p.line, p.field) for p in problems] == [(2, "json"), (3, "id"), (4, "json"), (5, "title")]
    assert "invalid UTF-8" in problems[-1].message


def test_csv_default_mapping_makes_other_columns_attributes(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,title,category,color,size\n1,Shirt,Men > Shirts,Red,M\n2,Short\n")
    records, problems = read(path)
    assert records[0].category == ("Men", "Shirts")
    assert records[0].attributes == [("color", "Red"), ("size", "M")]
    assert [(p.line, p.field, p.message) for p in problems] == [(3, "columns", "expected 5 columns, found 2")]


def test_csv_mapping_file_and_flags(tmp_path: Path) -> None:
    mapping = ColumnMapping.from_yaml(EXAMPLES / "mapping.yaml")
    records, problems = read(EXAMPLES / "catalog.csv", mapping=mapping)
    assert len(records) == 20 and not problems
    assert {name for r in records for name, _ in r.attributes} <= {"brand", "color", "material"}
    assert "list_price" in records[0].properties
    path = write(tmp_path / "c.csv", "sku,name,tags\nA1,Lamp,red|blue\n")
    flags = ColumnMapping.from_dict({"id": "sku", "title": "name", "list_separator": "|"})
    assert read(path, mapping=flags)[0][0].attributes == [("tags", "red"), ("tags", "blue")]


def test_csv_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no id column 'id'"):
        open_catalog(write(tmp_path / "c.csv", "sku,name\n1,x\n"))
    with pytest.raises(CatalogError, match="not in the header: nope"):
        open_catalog(write(tmp_path / "d.csv", "id,name\n1,x\n"), mapping=ColumnMapping.from_dict({"title": "nope"}))
    with pytest.raises(CatalogError, match="file is empty"):
        open_catalog(write(tmp_path / "e.csv", ""))
    with pytest.raises(CatalogError, match="cannot tell the format"):
        open_catalog(write(tmp_path / "f.xyz", "x"))
    with pytest.raises(CatalogError, match="unknown preset"):
        open_catalog(tmp_path / "f.xyz", preset="amazon")


def test_csv_huge_field_and_multiline_cells(tmp_path: Path) -> None:
    big = "word " * 2_100_000  # about 10 MB
    path = write(tmp_path / "c.csv", f'id,title,description\n1,"multi\nline",{big}\n2,b,c\n')
    records, problems = read(path)
    assert [r.id for r in records] == ["1", "2"] and not problems
    assert len(records[0].description) > 10_000_000 - 10 and records[1].line == 4


def test_flipkart_specifications_parser() -> None:
    keyed, unkeyed = parse_specifications(
        '{"product_specification"=>[{"key"=>"Brand", "value"=>"A \\"B\\""}, {"value"=>"free text"}, {"key"=>"Color", "value"=>"Red"}]}'
    )
    assert keyed == [("Brand", 'A "B"'), ("Color", "Red")] and unkeyed == ["free text"]
    assert parse_specifications('{"product_specification"=>nil}') == ([], [])
    single = parse_specifications('{"product_specification"=>{"key"=>"Type", "value"=>"Mug"}}')
    assert single == ([("Type", "Mug")], [])


def test_flipkart_category_drops_the_product_name_segment() -> None:
    tree = '["Watches >> Wrist Watches >> Titan Wrist Watches >> Titan 123 Analog Wat..."]'
    assert parse_category_tree(tree, "Titan 123 Analog Watch") == ("Watches", "Wrist Watches", "Titan Wrist Watches")
    assert parse_category_tree('["Home >> Mugs"]', "Cup") == ("Home", "Mugs")


def test_flipkart_preset_reads_every_product(flipkart_csv: Path) -> None:
    records, problems = read(flipkart_csv, preset="flipkart")
    assert len(records) == 1050 and not problems
    assert len({r.id for r in records}) == 1050
    assert all(r.category for r in records)
    with_notes = [r for r in records if "notes" in r.properties]
    assert with_notes, "specification entries without a key are kept as notes"


TURTLE = """
@prefix schema: <https://schema.org/> .
@prefix ex: <http://example.com/> .
ex:p1 a schema:Product ; schema:sku "P1" ; schema:name "Steel Mug" ;
  schema:category "Kitchen > Mugs" ; schema:brand [ a schema:Brand ; schema:name "Acme" ] ;
  schema:image "images/x.jpg" ; schema:color "Red" ;
  schema:additionalProperty [ a schema:PropertyValue ; schema:name "Capacity" ; schema:value 350 ; schema:unitText "ml" ] ,
                            [ a schema:PropertyValue ; schema:name "Material" ; schema:value "Steel" ] .
ex:p2 a schema:Product ; schema:name "No sku" ; schema:weight [ schema:value 0.8 ; schema:unitCode "KGM" ] .
"""


def test_rdf_turtle_schema_org(tmp_path: Path) -> None:
    records, problems = read(write(tmp_path / "c.ttl", TURTLE))
    by_id = {r.id: r for r in records}
    p1 = by_id["P1"]
    assert p1.title == "Steel Mug" and p1.category == ("Kitchen", "Mugs") and p1.image == "images/x.jpg"
    assert set(p1.attributes) == {("brand", "Acme"), ("color", "Red"), ("Capacity", "350 ml"), ("Material", "Steel")}
    assert by_id["http://example.com/p2"].attributes == [("weight", "0.8 kg")]
    assert not problems


def test_rdf_ntriples_and_jsonld_without_network(tmp_path: Path) -> None:
    from rdflib import Graph

    graph = Graph().parse(data=TURTLE, format="turtle")
    nt = write(tmp_path / "c.nt", graph.serialize(format="nt"))
    assert {r.id for r in read(nt)[0]} == {"P1", "http://example.com/p2"}
    doc = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "Product", "sku": "J1", "name": "Lamp", "brand": {"@type": "Brand", "name": "Lumo"},
             "additionalProperty": [{"@type": "PropertyValue", "name": "Color", "value": "Blue"}]}
        ],
    }
    [record] = read(write(tmp_path / "c.jsonld", json.dumps(doc)))[0]
    assert record.id == "J1" and set(record.attributes) == {("brand", "Lumo"), ("Color", "Blue")}


def test_rdf_parse_errors_are_file_level(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot parse as turtle"):
        open_catalog(write(tmp_path / "bad.ttl", "this is not turtle ."))
    with pytest.raises(CatalogError, match="no schema:Product"):
        open_catalog(write(tmp_path / "empty.ttl", "@prefix ex: <http://e/> . ex:a ex:b ex:c ."))
