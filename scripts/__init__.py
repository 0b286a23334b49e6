"""Command-line entry points: ``fxvae <command>`` (:mod:`scripts.cli`) runs one of them.

Each module is a thin wrapper over the packages (``model``, ``hw``, ``sim``)
with a ``main(argv, prog)`` that parses its arguments and returns an exit
status; ``python -m scripts.<module>`` runs one directly.
"""
