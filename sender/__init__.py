"""The sender service (FastAPI): ``POST /transmit`` -> encode -> gRPC to the channel.

The upload (PNG or JPEG, optionally with its label and instance maps) is checked,
resized to the receiver model's resolution, segmented when no label map is given, coded
into a ``SemanticFrame`` (:func:`gesco.link.encode_image_frame`) and sent to the channel
(``Channel.Transmit``, with a deadline). The reply (202) carries the id, the bit
budget and the receiver's result URL. Run it with ``python -m sender`` (settings:
``GESCO_SENDER_*``, see :class:`sender.settings.SenderSettings`).
"""
