"""Data quality: label-error audits (confident learning with cleanlab) and picking what to
label next (active learning). Like ``evaluation/``, a lower layer: it works on probabilities
and texts handed to it and never imports ``docsort.api`` or ``docsort.cli``."""
