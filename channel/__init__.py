"""The channel service (gRPC): counts bits, applies the channel, forwards to the receiver.

``Channel.Transmit(SemanticFrame) -> TransmitAck``: validates the frame, runs
:func:`gesco.link.apply_channel` (bits, symbols, noise at the frame's PSNR), forwards the
``ReceivedFrame`` to the receiver (``Receiver.Deliver``, with a deadline), and only once
the receiver has acknowledged (stored the job) appends one JSON line to the bit-budget
log and answers ``ACCEPTED`` with the :class:`ChannelReport`.

Errors: a malformed or inconsistent frame -> ``INVALID_ARGUMENT``; the receiver down ->
``UNAVAILABLE``; the receiver too slow -> ``DEADLINE_EXCEEDED``. Run it with
``python -m channel`` (settings: environment variables ``GESCO_CHANNEL_*``, see
:class:`channel.settings.ChannelSettings`).
"""
