"""The review page over HTTP (Starlette's test client drives the real app in-process).

Queue order and counts, the product page's values and evidence, decisions through the forms,
and the guards: cross-site forms, foreign Host names, the token, the image folder. The same page
then runs against Neo4j, since it only talks to the store contract.
"""

from __future__ import annotations

import os
import re
import shutil
from urllib.parse import quote
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from graph_store import GraphStore, ProductNode, open_store
from kgmm.review.evidence import SimilarProducts
from kgmm.serve import UnsafeBindError, check_bind, create_app
from tests.review_data import CATALOG, TAWA, build_review_store

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    path = str(tmp_path_factory.mktemp("web") / "g.db")
    store = open_store(path, create=True)
    proposals = build_review_store(store)
    yield store, proposals
    store.close()


@pytest.fixture(scope="module")
def client(scene) -> TestClient:
    return TestClient(create_app(scene[0], reviewer="ann"), base_url=BASE)


def csrf(page: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)


def decide(client: TestClient, pid: str, attribute: str, value: str, verdict: str, **headers: str):
    token = csrf(client.get(f"/product/{quote(pid)}").text)
    form = {"csrf": token, "product_id": pid, "attribute": attribute, "value": value, "verdict": verdict, "back": ""}
    return client.post("/decide", data=form, headers={"Origin": BASE, **headers}, follow_redirects=False)


def test_queue_orders_by_worth_and_counts_what_is_left(client: TestClient, scene) -> None:
    page = client.get("/").text
    rows = re.findall(r'class="queue-row" data-product="([0-9a-f]+)"', page)
    worths = [float(w) for w in re.findall(r'<td class="p">([0-9.]+)</td>', page)]
    assert rows and worths == sorted(worths, reverse=True)
    assert re.search(r'id="open-total">(\d+)<', page).group(1) == str(len(list(scene[0].iter_triples(["model"]))))
    only_material = client.get("/?attribute=material").text
    assert set(re.findall(r'data-product="([0-9a-f]+)"', only_material)) == {e.product_id for e in scene[1]["material"]}
    assert "is not a number" in client.get("/?min_score=lots").text
    suspect = client.get("/?suspect=only").text
    assert re.findall(r'data-product="([0-9a-f]+)"', suspect) == [TAWA]


def test_product_page_shows_photo_values_side_by_side_and_evidence(client: TestClient) -> None:
    page = client.get(f"/product/{TAWA}").text
    assert f'src="/image/{TAWA}"' in page and "oxford Tawa" in page
    assert 'class="source-catalog">black' in page  # the catalog's value, beside the suggestion
    assert "catalog says <q>black</q>, the model suggests <q class=\"value\">silver</q>" in page
    assert "<mark>Black</mark>" in page  # the description's words behind the catalog value
    assert 'data-shortcut="c"' in page and 'data-shortcut="a"' in page
    assert client.get("/product/no-such-id").status_code == 404
    image = client.get(f"/image/{TAWA}")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def test_evidence_lists_similar_products_with_the_value(client: TestClient, scene) -> None:
    similar = SimilarProducts(scene[0])
    found = [e for e in scene[1]["color"] if similar.neighbours(e.product_id, e.attribute, e.value)]
    assert found, "some proposal has look-alikes carrying its value"
    page = client.get(f"/product/{found[0].product_id}").text
    assert f"Most similar products with color = {found[0].value}" in page
    assert re.search(r'class="neighbour">\s*<img src="/image/[0-9a-f]+"', page)


def test_forms_decide_and_undo(client: TestClient, scene) -> None:
    store, proposals = scene
    target = proposals["color"][2]
    answer = decide(client, target.product_id, "color", target.value, "accept")
    assert answer.status_code == 303 and "said=accept" in answer.headers["location"]
    assert ("color", target.value, "reviewed") in {(e.attribute, e.value, e.source) for e in store.get_product(target.product_id).edges}
    page = client.get(f"/product/{target.product_id}").text
    assert "accept</td><td>color</td>" in page.replace("\n", "")
    undo = client.post("/undo", data={"csrf": csrf(page), "back": ""}, headers={"Origin": BASE}, follow_redirects=False)
    assert undo.status_code == 303 and "undid+accept" in undo.headers["location"]
    assert store.reviews([target.product_id]) == []
    assert decide(client, target.product_id, "color", target.value, "maybe").status_code == 400


def test_cross_site_forms_are_refused(client: TestClient, scene) -> None:
    target = scene[1]["color"][3]
    assert decide(client, target.product_id, "color", target.value, "reject", Origin="http://evil.example").status_code == 403
    form = {"csrf": "0" * 64, "product_id": target.product_id, "attribute": "color", "value": target.value, "verdict": "reject"}
    assert client.post("/decide", data=form, headers={"Origin": BASE}).status_code == 403
    bare = TestClient(client.app, base_url=BASE)
    del bare.headers["user-agent"]
    assert bare.post("/decide", data=form).status_code == 403  # neither Origin nor Referer
    assert scene[0].reviews([target.product_id]) == []


def test_host_names_and_the_token(scene) -> None:
    app = create_app(scene[0], reviewer="ann")
    assert TestClient(app, base_url="http://evil.example").get("/").status_code == 421  # DNS rebinding
    assert TestClient(app, base_url="http://localhost:8000").get("/").status_code == 200
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    with pytest.raises(UnsafeBindError, match="token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "s3cret")
    guarded = TestClient(create_app(scene[0], reviewer="ann", token="s3cret"), base_url="http://10.0.0.5:8000")
    assert guarded.get("/").status_code == 401
    assert guarded.get("/?token=wrong").status_code == 401
    opened = guarded.get("/?token=s3cret", follow_redirects=False)
    assert opened.status_code == 303 and "kgmm_token" in opened.headers["set-cookie"]
    assert guarded.get("/").status_code == 200  # the cookie now carries it
    other = TestClient(guarded.app, base_url="http://10.0.0.5:8000")
    assert other.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_only_images_inside_the_catalog_folder_are_served(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    (folder / "images").mkdir(parents=True)
    photo = next((CATALOG.parent / "images").glob("*.jpg"))
    shutil.copy(photo, folder / "images" / "ok.jpg")
    secret = tmp_path / "secret.jpg"
    shutil.copy(photo, secret)
    os.symlink(secret, folder / "images" / "link.jpg")
    with open_store(str(tmp_path / "g.db"), create=True) as store:
        store.upsert_products([
            ProductNode("inside", "in", image=str(folder / "images" / "ok.jpg"), image_status="ok"),
            ProductNode("dotdot", "up", image=str(folder / "images" / ".." / ".." / "secret.jpg"), image_status="ok"),
            ProductNode("absolute", "abs", image=str(secret), image_status="ok"),
            ProductNode("linked", "link", image=str(folder / "images" / "link.jpg"), image_status="ok"),
        ])
        client = TestClient(create_app(store, reviewer="ann", image_folder=str(folder)), base_url=BASE)
        assert client.get("/image/inside").status_code == 200
        for pid in ("dotdot", "absolute", "linked", "../../secret.jpg", "..%2F..%2Fsecret.jpg"):
            assert client.get(f"/image/{pid}").status_code == 404, pid


@pytest.mark.neo4j
def test_the_page_works_against_neo4j(neo4j_store: GraphStore) -> None:
    proposals = build_review_store(neo4j_store)
    client = TestClient(create_app(neo4j_store, reviewer="ann"), base_url=BASE)
    assert TAWA in client.get("/?suspect=only").text
    target = proposals["material"][0]
    assert decide(client, target.product_id, "material", target.value, "reject").status_code == 303
    assert [r.decision for r in neo4j_store.reviews([target.product_id])] == ["reject"]
    assert client.get(f"/image/{TAWA}").status_code == 200


def test_hostile_ids_and_values_are_escaped_and_still_work(tmp_path: Path) -> None:
    from graph_store import AttributeEdge, RunInfo

    nasty = 'a b?c#d/e%f"<x>'
    with open_store(str(tmp_path / "h.db"), create=True) as store:
        store.upsert_products([ProductNode(nasty, "T<script>alert(1)</script>")], [AttributeEdge(nasty, "color", "red")])
        store.write_predictions(RunInfo("r"), [AttributeEdge(nasty, "size", '"><b>x', "model", None, 0.5, "r")])
        client = TestClient(create_app(store, reviewer="ann"), base_url=BASE)
        [link] = re.findall(r'href="(/product/[^"]+)"', client.get("/").text)
        page = client.get(link.replace("&amp;", "&")).text
        assert "<script>alert" not in page and "&lt;script&gt;" in page and "<b>x" not in page
        answer = decide(client, nasty, "size", '"><b>x', "reject")
        assert answer.status_code == 303 and [r.value for r in store.reviews()] == ['"><b>x']
