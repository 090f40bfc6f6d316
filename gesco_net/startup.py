"""How a service process starts: one helper for ``python -m sender``, ``channel`` and ``receiver``.

Every service starts the same way, in this order:

1. its flags (``argparse``) override its ``GESCO_<SERVICE>_*`` settings (pydantic-settings):
   a flag left out keeps the environment's value or the default;
2. the root logger is configured (text or JSON lines, :func:`gesco_net.logs.configure_logging`)
   and torch's thread count set when ``torch_threads`` is given;
3. the service is built (model, store, servers); a :class:`gesco.errors.GescoError` raised
   there (an unusable key file, half a TLS pair, a missing checkpoint, a malformed store URL)
   is printed as ``<service>: cannot start: <why>`` and the process exits with status 2;
4. a service listening beyond loopback without API keys logs a warning
   (:func:`gesco_net.auth.warn_if_exposed`);
5. it serves until SIGINT / SIGTERM, then stops cleanly and exits with status 0.

:func:`run_service` does steps 1-5 given a :class:`ServiceStart` (what differs: the name,
the settings class, the build and serve functions, where the API keys are set);
:func:`stop_on_signals` is step 5's signal handling for servers that do not run uvicorn
(the channel's gRPC server, the receiver's worker).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gesco.errors import GescoError
from gesco_net.auth import ApiKeys, read_keys, warn_if_exposed
from gesco_net.logs import configure_logging


@dataclass(frozen=True)
class ServiceStart:
    """What :func:`run_service` needs to know of one service.

    Attributes:
        name: the service's name in messages and logs (``"sender"``); its logger is ``gesco.<name>``.
        parser: its flags; each flag's ``dest`` is a field of the settings class.
        settings: the pydantic-settings class (fields ``log_level``, ``log_json``,
            ``torch_threads``, ``host``, ``published_on`` and the key fields named below).
        build: ``settings -> service``: everything that can fail on a bad configuration.
        serve: ``(service, settings) -> None``: serve until SIGINT / SIGTERM, then stop.
        keys: names of the settings fields holding the API keys and their file
            (``("api_keys", "api_keys_file")``); ``None``: nothing to warn about.
        keys_when: ``settings -> bool``: whether this process serves anything to warn about
            (the receiver's worker role serves nothing); default: always.
        errors: the exceptions that mean "cannot start" (exit 2); default: any ``GescoError``.
    """

    name: str
    parser: argparse.ArgumentParser
    settings: type
    build: Callable[[Any], Any]
    serve: Callable[[Any, Any], None]
    keys: tuple[str, str] | None = None
    keys_when: Callable[[Any], bool] = lambda settings: True
    errors: tuple[type[BaseException], ...] = (GescoError,)


def settings_from_flags(settings_cls: type, args: argparse.Namespace) -> Any:
    """The settings with every flag that was given (not ``None``) overriding the environment."""
    return settings_cls(**{k: v for k, v in vars(args).items() if v is not None})


def prepare_process(name: str, settings: Any) -> None:
    """Step 2: logging (text or JSON lines) and torch's thread count (when ``torch_threads`` is set)."""
    configure_logging(name, settings.log_level, settings.log_json)
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)


def stop_on_signals() -> threading.Event:
    """An event that SIGINT or SIGTERM sets (the handlers are installed now; call from the main thread)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_service(start: ServiceStart, argv: Sequence[str] | None = None) -> int:
    """Start and run one service (steps 1-5 of the module docstring); returns the exit status.

    Returns:
        0 after a clean stop; 2 when the service cannot start (the reason on stderr).
    """
    settings = settings_from_flags(start.settings, start.parser.parse_args(argv))
    prepare_process(start.name, settings)
    try:
        service = start.build(settings)
    except start.errors as e:
        print(f"{start.name}: cannot start: {e}", file=sys.stderr, flush=True)
        return 2
    if start.keys is not None and start.keys_when(settings):
        keys_field, file_field = start.keys
        keys = ApiKeys(read_keys(getattr(settings, keys_field), getattr(settings, file_field)))
        warn_if_exposed(f"the {start.name}", settings.host, keys, logging.getLogger(f"gesco.{start.name}"),
                        settings.published_on)
    start.serve(service, settings)
    return 0
