"""One router per resource; :mod:`sitegraph.api.main` gathers them."""
