"""The receiver service: gRPC ingest + REST results, one process.

* ``Receiver.Deliver(ReceivedFrame) -> DeliverAck`` (gRPC): validates the frame, stores
  the job durably (SQLite row + the frame's bytes in the data directory) and only then
  acknowledges (:mod:`receiver.ingest`, :mod:`receiver.store`).
* a worker thread (:mod:`receiver.worker`) takes queued jobs in batches of compatible
  sampling settings, runs FDS and guided diffusion sampling (GPU when present), writes
  PNGs and marks the jobs done with per-stage timings;
* REST (:mod:`receiver.app`, routes in :mod:`receiver.routes`): ``GET /result/{id}``, ``/result/{id}/image.png``,
  ``/result/{id}/received.png``, ``/result/{id}/denoised.png``, ``/healthz``.

A restart resumes the queue: jobs left ``running`` by a crash go back to ``queued``.
The process refuses to start without the diffusion checkpoint (never random weights).
Run it with ``python -m receiver`` (settings: ``GESCO_RECEIVER_*``, see
:class:`receiver.settings.ReceiverSettings`).
"""
