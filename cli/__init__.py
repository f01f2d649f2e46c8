"""The ``kgmm`` command line: a thin Typer layer over kg_builder, graph_store and kgmm."""
