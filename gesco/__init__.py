"""gesco: a networked simulator of generative semantic communication.

The core library (this package) holds every formula once: semantic maps, codecs and bit
accounting, the channel, FDS, the semantic diffusion model and its samplers, data,
the segmenter, training and evaluation. The services (``sender``, ``channel``,
``receiver``) are thin layers over it.
"""

__version__ = "0.1.0"
