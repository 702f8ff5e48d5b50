"""Compose: the Compose Specification model and single-host `compose up/down`.

A project is loaded in stages, each its own module and testable alone:
read (`loader`) -> interpolate (`interpolate`) -> merge (`merge`) -> validate (`schema`
per file, `validate` on the merged model) -> normalise (`normalise` into `model`'s
dataclasses). `project.load_project` runs them; `compose config` prints the result.
Running a project against the daemon is `orchestrate`'s job.
"""
