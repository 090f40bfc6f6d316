"""The names behind the transmission settings that take a registry's keys, for the command lines.

A setting such as ``channel`` declares the registry its values come from
(:attr:`gesco.transmit_fields.FieldSpec.registry`, ``"gesco.channel.CHANNELS"``) without
importing it: the channel models import torch, and ``gesco --help`` must not. Each flag of such a
setting (``gesco send``'s flags from :func:`gesco.transmit_fields.add_cli_flags`, ``gesco evaluate
--channel``) checks its value with :func:`gesco.transmit_fields.cli_type` against the names one
function of :data:`CLI_REGISTRIES` returns, imported only when the flag is parsed.
"""

from __future__ import annotations

from collections.abc import Callable


def channel_names() -> list[str]:
    """The channel models' names, sorted (imports :mod:`gesco.channel`, hence torch)."""
    from gesco.channel import CHANNELS

    return sorted(CHANNELS)


#: :attr:`~gesco.transmit_fields.FieldSpec.registry` -> a function returning that registry's names
CLI_REGISTRIES: dict[str, Callable[[], list[str]]] = {"gesco.channel.CHANNELS": channel_names}
