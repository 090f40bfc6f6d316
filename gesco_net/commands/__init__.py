"""Sub-commands of ``gesco`` that start or talk to the services (see :mod:`gesco_net.cli`)."""
