"""The evaluation protocol behind ``kgmm evaluate`` (K3M's robustness protocol).

Held-out triples stratified per attribute (``splits``), ranked by :mod:`kgmm.ranking` for
every model, K3M and its single-modality / ablated variants (``k3m_variants``), the
KGE baselines from PyG (``kge``), the majority-value rule (``baselines``), the per-attribute
text classifiers (``tfidf``), the category probe (``probe``), damaged modalities (``corruption``), and the report and plots (``report``,
``plots``), all driven by ``protocol.run_protocol``.
"""
