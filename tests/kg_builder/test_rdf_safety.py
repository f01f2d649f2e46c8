"""RDF inputs never expand entities, never fetch a context, and explain parse errors in full."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from kg_builder import CatalogError, open_catalog

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY lol "lol">
{levels}
]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:s="https://schema.org/">
 <s:Product rdf:about="urn:p1"><s:sku>p1</s:sku><s:name>&lol9;</s:name></s:Product>
</rdf:RDF>
"""


def test_billion_laughs_rdf_xml_is_refused_fast(tmp_path: Path) -> None:
    levels = "\n".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    (tmp_path / "laughs.rdf").write_text(LAUGHS.format(levels=levels))
    started = time.perf_counter()
    with pytest.raises(CatalogError, match="entity declarations is refused"):
        open_catalog(tmp_path / "laughs.rdf")
    assert time.perf_counter() - started < 2


def test_external_entity_rdf_xml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "xxe.rdf").write_text(LAUGHS.replace("{levels}", '<!ENTITY lol9 SYSTEM "file:///etc/passwd">'))
    with pytest.raises(CatalogError, match="entity declarations is refused"):
        open_catalog(tmp_path / "xxe.rdf")


def test_plain_rdf_xml_still_loads(tmp_path: Path) -> None:
    text = LAUGHS.replace("{levels}", "").replace("<!DOCTYPE rdf:RDF [\n <!ENTITY lol \"lol\">\n\n]>\n", "")
    (tmp_path / "ok.rdf").write_text(text.replace("&lol9;", "Mug"))
    assert [r.title for r in open_catalog(tmp_path / "ok.rdf").rows()] == ["Mug"]


@pytest.fixture
def server():
    """A real local HTTP server that records every request it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/ld+json")
            self.end_headers()
            self.wfile.write(b'{"@context": {"@vocab": "https://schema.org/"}}')

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()


@pytest.mark.parametrize("context", ["{url}/ctx.jsonld", ["{url}/ctx.jsonld"], {"@import": "{url}/ctx.jsonld"},
                                     "file:///etc/passwd", {"brand": {"@id": "https://schema.org/brand", "@context": "{url}/c"}}])
def test_jsonld_remote_or_file_context_is_never_fetched(tmp_path: Path, server, context: object) -> None:
    url, requests = server
    import json

    text = json.dumps({"@context": context, "@type": "Product", "sku": "a", "name": "x"}).replace("{url}", url)
    (tmp_path / "ctx.jsonld").write_text(text)
    with pytest.raises(CatalogError, match="not fetched"):
        list(open_catalog(tmp_path / "ctx.jsonld").rows())
    assert requests == []


def test_jsonld_schema_org_context_is_inlined(tmp_path: Path) -> None:
    (tmp_path / "ok.jsonld").write_text(
        '{"@context": "https://schema.org/", "@type": "Product", "sku": "a", "name": "x", "brand": {"@type": "Brand", "name": "Acme"}}'
    )
    record = next(iter(open_catalog(tmp_path / "ok.jsonld").rows()))
    assert (record.id, record.attributes) == ("a", [("brand", "Acme")])


def test_turtle_parse_error_is_given_whole_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.ttl").write_text('@prefix s: <https://schema.org/> .\n<urn:p1> a s:Product ; s:name "x"\n<urn:p2> a s:Product .\n')
    with pytest.raises(CatalogError) as caught:
        open_catalog(tmp_path / "bad.ttl")
    message = str(caught.value)
    assert "\n" not in message and "line 3" in message and "expected" in message


def test_gzip_turtle_is_read_transparently(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "c.ttl.gz").write_bytes(gzip.compress(b'@prefix s: <https://schema.org/> .\n<urn:p> a s:Product ; s:sku "g" .\n'))
    assert [r.id for r in open_catalog(tmp_path / "c.ttl.gz").rows()] == ["g"]
