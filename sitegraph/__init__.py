"""sitegraph: a knowledge graph of clinical-trial sites, their barriers and the tactics that remove them."""

__version__ = "0.1.0"
