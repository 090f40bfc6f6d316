"""The network wing: everything of gesco that speaks HTTP or gRPC, outside the core package.

The core (:mod:`gesco`: formulas, models, training, evaluation) imports no network
package; this package and the three services (``sender/``, ``channel/``, ``receiver/``)
hold all of it, and the import contract in ``pyproject.toml`` keeps it so
(docs/architecture.md). What lives here:

* the kit the three services share: gRPC servers, health checks and client options
  (:mod:`gesco_net.grpc_kit`, :mod:`gesco_net.probes`), TLS and API keys
  (:mod:`gesco_net.tls`, :mod:`gesco_net.auth`), logs, metrics, rate limits, request
  caps, the offline API docs, pydantic models shared by the HTTP APIs
  (:mod:`gesco_net.models`);
* the generated gRPC stubs (:mod:`gesco_net.gesco_pb2_grpc`; the messages stay in
  :mod:`gesco.wire`);
* the commands that start or talk to the services (:mod:`gesco_net.commands`: ``gesco
  up``, ``send``, ``certs``) and the installed ``gesco`` command (:mod:`gesco_net.cli`).

No formula lives here: the transmission stages are in :mod:`gesco.link`.
"""
