"""Hyperparameter search (``docsort tune``): the search space (``space``), what trials report
and the search's files (``trials``), and two backends: Optuna in this process
(``optuna_search``) and Ray Tune with ASHA or Population-Based Training (``ray_search``).

A layer below ``docsort.api``: the backends run an objective the API builds (one ``docsort
train`` per trial) and never import the API, the CLI or a kind by name.
"""
