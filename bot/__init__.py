"""Composition root: settings, wiring, the ``keyshop`` command line."""
