"""docsort: sort documents into categories, from TF-IDF to transformers and LLMs."""

__version__ = "0.1.0"
