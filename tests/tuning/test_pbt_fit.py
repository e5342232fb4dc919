"""PBT on Ray says when its population cannot run at once: Ray then pauses every trial after
each epoch and restarts it from its checkpoint in a new process, which made a 4-trial search
on 2 cores finish no trial in 300 s. No Ray is started here."""

from __future__ import annotations

from docsort.tuning.ray_search import pbt_fit_note


def test_a_population_that_does_not_fit_is_named_with_the_share_that_fits() -> None:
    note = pbt_fit_note(trials=4, cpus_per_trial=1.0, cpus=2.0)
    assert note is not None
    assert "4 trials at 1 CPU each do not run at once on 2 CPUs" in note
    assert note.endswith("--cpus-per-trial 0.5 runs them all at once")


def test_a_population_that_fits_says_nothing() -> None:
    assert pbt_fit_note(trials=4, cpus_per_trial=0.5, cpus=2.0) is None
    assert pbt_fit_note(trials=3, cpus_per_trial=2 / 3, cpus=2.0) is None  # float sums
    assert pbt_fit_note(trials=2, cpus_per_trial=1.0, cpus=2.0) is None
    assert pbt_fit_note(trials=4, cpus_per_trial=1.0, cpus=0.0) is None  # CPUs not known
