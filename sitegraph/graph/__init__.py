"""Stores, schema, projections and centrality."""
