"""Sub-commands of the ``gesco`` CLI, one module each (see :mod:`gesco.cli`)."""
