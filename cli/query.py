"""`kgmm query product|attribute` and `kgmm stats`: what an analyst looks at."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from graph_store import SOURCES, open_store
from kg_builder.records.normalize import normalize_attribute, normalize_value

from .errors import KgmmCommand, KgmmGroup, fail, guarded
from .options import (
    DEFAULT_STORE_VALUE,
    DatabaseOption,
    FormatOption,
    LimitOption,
    PasswordOption,
    StatsFormat,
    StoreOption,
    TableFormat,
    UserOption,
)
from .render import console, dump_json, plain, render_rows, safe

query_app = typer.Typer(help="Look up products and attributes, with each value's source and score.", no_args_is_help=True, cls=KgmmGroup)

EDGE_COLUMNS = ("attribute", "value", "source", "score", "raw", "run_id")


def _sources(text: Optional[str], predicted: bool) -> list[str]:
    chosen = [s.strip() for s in text.split(",")] if text else list(SOURCES)
    unknown = [s for s in chosen if s not in SOURCES]
    if unknown:
        raise fail(f"--source: unknown {', '.join(unknown)}; expected {', '.join(SOURCES)}")
    return [s for s in chosen if predicted or s != "model"]


@query_app.command("product", cls=KgmmCommand)
@guarded
def query_product(
    product_id: Annotated[str, typer.Argument(help="The product's catalog id.")],
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    format: FormatOption = TableFormat.table,
) -> None:
    """Show one product with its catalog, extracted and predicted values side by side."""
    with open_store(store, user=user, password=password, database=database) as graph:
        view = graph.get_product(product_id)
    if view is None:
        raise fail(f"no product {product_id!r} in {store}")
    product = view.product
    rows = [
        {"attribute": e.attribute, "value": e.value, "source": e.source, "score": e.score, "raw": e.raw, "run_id": e.run_id}
        for e in view.edges
    ]
    if format is TableFormat.json:
        dump_json(
            {
                "id": product.id,
                "title": product.title,
                "description": product.description,
                "category": product.category_path,
                "image": product.image,
                "image_status": product.image_status,
                "image_reason": product.image_reason,
                "properties": dict(product.properties),
                "attributes": rows,
            }
        )
        return
    if format is TableFormat.table:
        console.print(plain(product.id, "bold") + plain(f"  {product.title}"))
        console.print(plain(f"  category: {product.category_path or '-'}"))
        image = product.image if product.image_status == "ok" else f"missing ({product.image_reason})" if product.image_status == "missing" else "-"
        console.print(plain(f"  image:    {image or '-'}"))
    render_rows(rows, EDGE_COLUMNS, format.value)


@query_app.command("attribute", cls=KgmmCommand)
@guarded
def query_attribute(
    name: Annotated[str, typer.Argument(help="Attribute name (normalised like the catalog: case and spacing do not matter).")],
    value: Annotated[Optional[str], typer.Option("--value", "-v", help="Only products with this value.")] = None,
    missing: Annotated[bool, typer.Option("--missing", help="List products that lack the attribute instead.")] = False,
    source: Annotated[Optional[str], typer.Option("--source", help="Comma-separated sources to include: catalog,text,model.")] = None,
    predicted: Annotated[bool, typer.Option("--predicted/--no-predicted", help="Include model predictions.")] = True,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="Drop predictions scoring below this.")] = None,
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    format: FormatOption = TableFormat.table,
    limit: LimitOption = None,
) -> None:
    """List products having an attribute (optionally one value), or lacking it with --missing."""
    attribute = normalize_attribute(name)
    sources = _sources(source, predicted)
    with open_store(store, user=user, password=password, database=database) as graph:
        if missing:
            ids = graph.products_missing_attribute(attribute, sources)
            rows = [{"product_id": pid} for pid in ids[:limit]]
            render_rows(rows, ("product_id",), format.value, title=f"{len(ids):,} products without {attribute!r}")
            return
        wanted = normalize_value(value) if value is not None else None
        edges = graph.products_with_attribute(attribute, wanted, sources=sources, min_score=min_score)
    rows = [
        {"product_id": e.product_id, "value": e.value, "source": e.source, "score": e.score, "raw": e.raw, "run_id": e.run_id}
        for e in edges[:limit]
    ]
    title = f"{len(edges):,} values of {attribute!r}" + (f" = {wanted!r}" if wanted else "")
    render_rows(rows, ("product_id", "value", "source", "score", "raw", "run_id"), format.value, title=title)


@guarded
def stats(
    store: StoreOption = DEFAULT_STORE_VALUE,
    user: UserOption = None,
    password: PasswordOption = None,
    database: DatabaseOption = None,
    format: Annotated[StatsFormat, typer.Option("--format", "-f", help="Output format.")] = StatsFormat.table,
    top: Annotated[int, typer.Option("--top", min=1, help="How many attributes and categories to list.")] = 10,
) -> None:
    """Counts of products, values, attributes, categories, triples by source and images."""
    with open_store(store, user=user, password=password, database=database) as graph:
        figures = graph.stats(top).as_dict()
        last = graph.last_build()
    if format is StatsFormat.json:
        figures["last_build"] = {k: v for k, v in (last or {}).items() if k != "problems"} or None
        dump_json(figures)
        return
    by_source = safe(", ".join(f"{k} {v:,}" for k, v in figures["edges_by_source"].items()) or "none")
    console.print(plain(store, "bold"))
    for label, key in (("products", "products"), ("values", "values"), ("attributes", "attributes"), ("categories", "categories")):
        console.print(f"  {label:<12}{figures[key]:>10,}", markup=False)
    console.print(f"  {'triples':<12}{figures['triples']:>10,}   ({by_source})", markup=False)
    console.print(
        f"  {'modalities':<12}title {figures['products_with_title']:,}, description {figures['products_with_description']:,}, "
        f"image {figures['products_with_image']:,} (missing {figures['images_missing']:,})",
        markup=False,
    )
    behaviour = figures.get("behaviour_edges") or {}
    if behaviour:
        kinds = safe(", ".join(f"{k} {v:,}" for k, v in behaviour.items()))
        console.print(f"  {'behaviour':<12}{sum(behaviour.values()):>10,}   ({kinds})", markup=False)
    console.print(f"  {'runs':<12}{figures['runs']:>10,}", markup=False)
    render_rows(figures["top_attributes"], ("attribute", "products", "values"), "table", title="most used attributes")
    render_rows(figures["top_categories"], ("category", "products"), "table", title="top-level categories")

