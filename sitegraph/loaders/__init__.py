"""Loaders: read external data into :class:`~sitegraph.graph.store.GraphBatch` objects.

``ctgov`` reads ClinicalTrials.gov study records (v2 JSON, v1 JSON, classic XML, zip archives);
``normalize`` holds its name cleaning and facility/person matching; ``csvfiles`` reads sitegraph's
own CSV exchange files (and writes them). Loaders never write to a store: they return a batch and a list of problems,
and the caller decides whether to write.
"""
