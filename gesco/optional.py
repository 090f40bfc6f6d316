"""Optional dependency groups: import them lazily, fail with a message naming the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from gesco.errors import MissingExtraError


def require_sionna(feature: str) -> ModuleType:
    """Import Sionna (``sionna-no-rt``, the ``[sionna]`` extra) for ``feature``.

    Raises:
        MissingExtraError: Sionna is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module("sionna.phy")
    except ImportError as e:
        raise MissingExtraError(
            f"{feature} needs Sionna, the optional extra [sionna]: pip install -e \".[sionna]\" "
            f"(or pip install sionna-no-rt); import failed: {e}"
        ) from None
