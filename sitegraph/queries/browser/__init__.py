"""What Neo4j Browser users need, as files: a guide generated from the query catalogue and a ``.grass`` style.

* :mod:`sitegraph.queries.browser.guide` renders the guide (HTML slides with runnable blocks) from
  :func:`sitegraph.queries.catalogue.load_catalogue`; ``sitegraph-guide.html`` beside it is the same
  guide, written out for any static web server.
* ``sitegraph.grass`` colours, sizes and captions every label.
* :mod:`sitegraph.queries.browser.server` serves both on 127.0.0.1 with the CORS header Browser needs.
"""
