"""Training past one process: ``docsort train --workers N`` runs the kind's own ``fit`` on N Ray
Train workers (``ray_train.py``). Used by ``docsort.api`` only; it never imports the API or the
CLI (docs/architecture.md)."""
