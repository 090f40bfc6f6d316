"""The little that the three services (``sender/``, ``channel/``, ``receiver/``) share.

* :mod:`gesco.serving.grpc_kit`: gRPC servers whose handlers turn malformed messages and
  :class:`gesco.errors.GescoInputError` into ``INVALID_ARGUMENT``, standard health
  checking (``grpc.health.v1``), client options with message-size limits.
* :mod:`gesco.serving.models`: pydantic models that appear in more than one HTTP API
  (the bit budget).
* :mod:`gesco.serving.probes`: waiting for a service to be healthy, free ports.

No formula lives here: the transmission stages are in :mod:`gesco.link`.
"""
