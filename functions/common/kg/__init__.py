"""kg: documents in, a knowledge graph in PostgreSQL + pgvector out."""

__version__ = "0.1.0"
