"""A conventional digital link to compare against (issue 11): source coding, 5G LDPC, QAM.

* :mod:`gesco.digital.mcs`: modulation and coding schemes, rate adaptation per PSNR;
* :mod:`gesco.digital.link`: bytes -> CRC -> LDPC -> QAM -> channel -> demapping -> decoding
  (Sionna, the ``[sionna]`` extra), with channel uses counted like the analog rows;
* :mod:`gesco.digital.source`: what is sent: the image as JPEG / WebP fitted to a channel-use
  budget, or PNG, or the semantic frame (header + lossless maps).

See ``docs/digital.md``.
"""

from gesco.digital.mcs import DEFAULT_GAP_DB, MCS, capacity_bits, mcs_table, select_mcs

__all__ = ["DEFAULT_GAP_DB", "MCS", "capacity_bits", "mcs_table", "select_mcs"]
