"""portside: build, ship, run, orchestrate and trust containers."""

__version__ = "0.1.0"
