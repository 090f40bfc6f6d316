"""``gesco up``: start the sender, the channel and the receiver as local processes.

Each service runs as ``python -m sender`` / ``channel`` / ``receiver`` with its settings
passed as ``GESCO_*`` environment variables (the same settings as in
``docker-compose.yml``). Ports come from the flags, else from ``GESCO_SENDER_PORT``,
``GESCO_CHANNEL_PORT``, ``GESCO_RECEIVER_PORT`` and ``GESCO_RECEIVER_GRPC_PORT``, else
8000-8003; a port in use stops the command before anything starts. The command waits until the three are healthy, prints their
URLs, restarts a child that dies (with backoff, see :mod:`gesco_net.commands.supervise`),
and on Ctrl-C (or SIGTERM) stops them (SIGTERM to each, then a grace period):
every service finishes what it is doing, and no accepted job is half-stored (jobs
still queued at the receiver are resumed by the next start).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gesco.errors import GescoError
from gesco.paths import BUDGET_LOG_NAME, default_data_dir
from gesco_net.commands import supervise


@dataclass
class Service:
    """One child process."""

    name: str
    module: str
    env: dict[str, str]
    process: subprocess.Popen | None = None


#: ``(flag, args attribute, environment variable, default, what listens)`` of each port
PORT_OPTIONS: list[tuple[str, str, str, int, str]] = [
    ("--sender-port", "sender_port", "GESCO_SENDER_PORT", 8000, "sender HTTP"),
    ("--channel-port", "channel_port", "GESCO_CHANNEL_PORT", 8001, "channel gRPC"),
    ("--receiver-port", "receiver_port", "GESCO_RECEIVER_PORT", 8002, "receiver REST"),
    ("--receiver-grpc-port", "receiver_grpc_port", "GESCO_RECEIVER_GRPC_PORT", 8003, "receiver gRPC"),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the sender, channel and receiver services on this machine",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="interface of all services (default: loopback)")
    for flag, _attr, env, default, what in PORT_OPTIONS:
        p.add_argument(flag, type=int, default=None, help=f"{what} port (default ${env}, else {default})")
    p.add_argument("--data-dir", default=None,
                   help="job store and bit-budget log (default $GESCO_DATA_DIR, else ~/.local/share/gesco; "
                   "`gesco budget` reads the log there)")
    p.add_argument("--checkpoint", help="diffusion checkpoint (default: the shipped guidance-distilled student; "
                   "checkpoints/diffusion-synthetic-64x128 is the guided model)")
    p.add_argument("--segmenter", help="segmenter checkpoint for uploads without a label map (default: the shipped one)")
    p.add_argument("--no-segmenter", action="store_true", help="do not load a segmenter (uploads need a label map)")
    p.add_argument("--device", default="auto", help="receiver device: auto (GPU when present), cpu, cuda, ...")
    p.add_argument("--batch-size", type=int, default=4, help="most jobs the receiver samples together (default 4)")
    p.add_argument("--budget-log", help="bit-budget log (default DATA_DIR/budget.jsonl)")
    p.add_argument("--store", default=None, help="job store: postgresql://user@host:port/db shares the jobs between "
                   "the receiver and its workers (default $GESCO_RECEIVER_STORE, else SQLite in DATA_DIR)")
    p.add_argument("--workers", type=int, default=0, help="N > 0: the receiver only ingests and serves results, "
                   "N receiver-worker processes sample (one torch thread each unless $GESCO_RECEIVER_TORCH_THREADS "
                   "says otherwise); 0 (default): the receiver samples itself")
    p.add_argument("--tls", metavar="DIR", default=None,
                   help="TLS on every hop (HTTPS, gRPC TLS) with the files of `gesco certs DIR`: ca.pem, server.pem, "
                   "server-key.pem (default $GESCO_TLS_DIR; unset: plaintext)")
    p.add_argument("--mtls", action="store_true", help="with --tls: the gRPC servers also require the services' "
                   "client certificates (mutual TLS)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the services to be healthy")
    supervise.add_arguments(p)  # --no-restart, --restart-backoff, ...
    p.set_defaults(handler=_up)


def resolve_ports(args: argparse.Namespace) -> list:
    """Each port from its flag, else its service's setting (``GESCO_*_PORT``), else the default.

    Sets ``args.sender_port`` etc. to the numbers used and returns them as
    :class:`gesco_net.ports.PortSpec` (with where each came from).

    Raises:
        GescoError: a ``GESCO_*`` variable of a service does not validate.
    """
    from pydantic import ValidationError

    from channel.settings import ChannelSettings
    from gesco_net.ports import PortSpec
    from receiver.settings import ReceiverSettings
    from sender.settings import SenderSettings

    try:
        from_env = {"sender_port": SenderSettings().port, "channel_port": ChannelSettings().port,
                    "receiver_port": ReceiverSettings().port, "receiver_grpc_port": ReceiverSettings().grpc_port}
    except ValidationError as e:
        raise GescoError(f"bad GESCO_* setting in the environment: {e}") from None
    specs = []
    for flag, attr, env, _default, what in PORT_OPTIONS:
        if getattr(args, attr) is not None:
            source = flag
        else:
            setattr(args, attr, from_env[attr])
            source = env if env in os.environ else "default"
        specs.append(PortSpec(what, int(getattr(args, attr)), source))
    return specs


def _model_settings(checkpoint: str | None) -> tuple[str, int, int, str]:
    """Class space, resolution and instance-id convention (``conditioning.instance_ids``, an imported
    authors' model: ``"8bit"``) of the receiver's checkpoint (fails early when it is missing)."""
    from gesco.checkpoint_io import checkpoint_paths
    from gesco.diffusion.checkpoint import TRAIN_HINT, read_card
    from gesco.errors import CheckpointError
    from gesco.paths import DEFAULT_RECEIVER, shipped_checkpoint

    path = checkpoint or shipped_checkpoint(DEFAULT_RECEIVER)
    weights, _ = checkpoint_paths(path)
    card = read_card(path)  # CheckpointError naming the file and the command
    if not weights.exists():
        raise CheckpointError(f"checkpoint weights {weights} not found; make them with `{TRAIN_HINT}`")
    h, w = card.resolution
    return card.class_space, int(h), int(w), str(card.conditioning.get("instance_ids", "full"))


def data_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(data folder, bit-budget log)`` of ``gesco up``'s options, absolute."""
    data_dir = Path(args.data_dir or default_data_dir()).resolve()
    budget_log = Path(args.budget_log).resolve() if args.budget_log else data_dir / BUDGET_LOG_NAME
    return data_dir, budget_log


#: files of a ``gesco certs`` folder that ``gesco up --tls`` uses
TLS_FILES = ("ca.pem", "server.pem", "server-key.pem")


def tls_files(args: argparse.Namespace) -> dict[str, Path] | None:
    """``gesco certs`` files of ``--tls`` (or ``$GESCO_TLS_DIR``), or ``None`` for plaintext.

    Raises:
        GescoError: a missing file, or ``--mtls`` without ``--tls``.
    """
    folder = getattr(args, "tls", None) or os.environ.get("GESCO_TLS_DIR") or None
    if folder is None:
        if getattr(args, "mtls", False):
            raise GescoError("--mtls needs --tls DIR (the certificates of `gesco certs DIR`)")
        return None
    files = {name: (Path(folder) / name).resolve() for name in TLS_FILES}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise GescoError(f"--tls {folder}: missing {', '.join(missing)}; make them with `gesco certs {folder}`")
    return files


def _tls_env(receiver: dict[str, str], channel: dict[str, str], sender: dict[str, str], files: dict[str, Path],
             mutual: bool) -> None:
    """Add the TLS (and mutual TLS) settings of the three services to their environments."""
    ca, cert, key = (str(files[n]) for n in TLS_FILES)
    for env, prefix in ((receiver, "GESCO_RECEIVER_"), (channel, "GESCO_CHANNEL_"), (sender, "GESCO_SENDER_")):
        env[prefix + "TLS_CERT"], env[prefix + "TLS_KEY"] = cert, key
    channel["GESCO_CHANNEL_RECEIVER_TLS_CA"] = sender["GESCO_SENDER_CHANNEL_TLS_CA"] = ca
    for url in ("GESCO_RECEIVER_SENDER_URL",):
        receiver[url] = receiver[url].replace("http://", "https://", 1)
    sender["GESCO_SENDER_RECEIVER_URL"] = sender["GESCO_SENDER_RECEIVER_URL"].replace("http://", "https://", 1)
    if mutual:
        receiver["GESCO_RECEIVER_GRPC_CLIENT_CA"] = channel["GESCO_CHANNEL_GRPC_CLIENT_CA"] = ca
        channel["GESCO_CHANNEL_RECEIVER_TLS_CERT"], channel["GESCO_CHANNEL_RECEIVER_TLS_KEY"] = cert, key
        sender["GESCO_SENDER_CHANNEL_TLS_CERT"], sender["GESCO_SENDER_CHANNEL_TLS_KEY"] = cert, key


def services_for(args: argparse.Namespace) -> list[Service]:
    """The three services (receiver, channel, sender) with their environment, from ``gesco up``'s options;
    with ``--workers N`` also N ``receiver-worker-i`` processes (role ``worker``) on the receiver's store."""
    if any(getattr(args, attr) is None for _flag, attr, *_rest in PORT_OPTIONS):
        resolve_ports(args)
    class_space, height, width, instance_ids = _model_settings(args.checkpoint)
    data_dir, budget_log = data_paths(args)
    data_dir.mkdir(parents=True, exist_ok=True)
    host = args.host
    public = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    receiver = {
        "GESCO_RECEIVER_HOST": host,
        "GESCO_RECEIVER_PORT": str(args.receiver_port),
        "GESCO_RECEIVER_GRPC_PORT": str(args.receiver_grpc_port),
        "GESCO_RECEIVER_DATA_DIR": str(data_dir),
        "GESCO_RECEIVER_DEVICE": args.device,
        "GESCO_RECEIVER_MAX_BATCH": str(args.batch_size),
        "GESCO_RECEIVER_SENDER_URL": f"http://{public}:{args.sender_port}",
    }
    if args.checkpoint:
        receiver["GESCO_RECEIVER_CHECKPOINT"] = str(Path(args.checkpoint).resolve())
    channel = {
        "GESCO_CHANNEL_HOST": host,
        "GESCO_CHANNEL_PORT": str(args.channel_port),
        "GESCO_CHANNEL_RECEIVER_ADDRESS": f"{public}:{args.receiver_grpc_port}",
        "GESCO_CHANNEL_BUDGET_LOG": str(budget_log),
        "GESCO_CHANNEL_HEIGHT": str(height),  # frames of another size are refused before decoding
        "GESCO_CHANNEL_WIDTH": str(width),
    }
    sender = {
        "GESCO_SENDER_HOST": host,
        "GESCO_SENDER_PORT": str(args.sender_port),
        "GESCO_SENDER_CHANNEL_ADDRESS": f"{public}:{args.channel_port}",
        "GESCO_SENDER_RECEIVER_URL": f"http://{public}:{args.receiver_port}",
        "GESCO_SENDER_CLASS_SPACE": class_space,
        "GESCO_SENDER_HEIGHT": str(height),
        "GESCO_SENDER_WIDTH": str(width),
        "GESCO_SENDER_INSTANCE_IDS": instance_ids,
        "GESCO_SENDER_LOAD_SEGMENTER": "false" if args.no_segmenter else "true",
    }
    if args.segmenter:
        sender["GESCO_SENDER_SEGMENTER"] = str(Path(args.segmenter).resolve())
    files = tls_files(args)
    if files is not None:
        _tls_env(receiver, channel, sender, files, getattr(args, "mtls", False))
    workers = getattr(args, "workers", 0)
    if workers < 0:
        raise GescoError(f"--workers must be 0 or more, got {workers}")
    if getattr(args, "store", None):
        from receiver.stores import check_store_url

        check_store_url(args.store)  # StoreConfigError (a GescoError) before anything starts
        receiver["GESCO_RECEIVER_STORE"] = args.store
    services = [Service("receiver", "receiver", receiver)]
    if workers > 0:
        receiver["GESCO_RECEIVER_ROLE"] = "receiver"
        worker = {**receiver, "GESCO_RECEIVER_ROLE": "worker",
                  "GESCO_RECEIVER_TORCH_THREADS": os.environ.get("GESCO_RECEIVER_TORCH_THREADS", "1")}
        services += [Service(f"receiver-worker-{i + 1}", "receiver",
                             {**worker, "GESCO_RECEIVER_WORKER_NAME": f"worker-{i + 1}"}) for i in range(workers)]
    return services + [Service("channel", "channel", channel), Service("sender", "sender", sender)]


def healthy(name: str, args: argparse.Namespace) -> bool:
    """Whether the service ``name`` answers its health check (HTTP and / or gRPC; over TLS with ``--tls``,
    presenting the services' certificate with ``--mtls``)."""
    from gesco_net.probes import grpc_health_on, http_ok
    from gesco_net.tls import client_channel

    public = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    files = tls_files(args)
    scheme, ca = ("https", str(files["ca.pem"])) if files else ("http", None)
    mutual = bool(files) and getattr(args, "mtls", False)

    def grpc_ok(port: int) -> bool:
        pair = {"client_cert": files["server.pem"], "client_key": files["server-key.pem"]} if mutual else {}
        with client_channel(f"{public}:{port}", 1 << 20, ca, **pair) as ch:
            return grpc_health_on(ch) == "SERVING"

    if name.startswith("receiver-worker"):
        return True  # no server: healthy while running (a worker that exits is restarted by the supervisor)
    if name == "receiver":
        return http_ok(f"{scheme}://{public}:{args.receiver_port}/healthz", ca=ca) and grpc_ok(args.receiver_grpc_port)
    if name == "channel":
        return grpc_ok(args.channel_port)
    return http_ok(f"{scheme}://{public}:{args.sender_port}/healthz", ca=ca)


def stop_services(services: list[Service], grace: float = 20.0) -> None:
    """SIGTERM every running child (in the order given), wait up to ``grace`` s, then SIGKILL.

    All children are signalled at once so they shut down in parallel; a frame in flight
    when the receiver stops is refused (the sender answers 503), never half-stored.
    """
    running = [s for s in services if s.process is not None and s.process.poll() is None]
    for s in running:
        s.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for s in running:
        try:
            s.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"gesco up: {s.name} did not stop within {grace:.0f} s; killing it", file=sys.stderr)
            s.process.kill()
            s.process.wait()


def _up(args: argparse.Namespace) -> int:
    from gesco_net.ports import check_ports_free

    ports = resolve_ports(args)
    check_ports_free(args.host, ports)  # PortInUseError: "port 8001 is in use (channel gRPC, ...)"
    services = services_for(args)
    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def launch(s: Service) -> None:
        s.process = subprocess.Popen([sys.executable, "-m", s.module], env={**os.environ, **s.env})

    try:
        for s in services:
            launch(s)
        deadline = time.monotonic() + args.startup_timeout
        pending = [s.name for s in services]
        while pending and stopping["signal"] is None:
            for s in services:
                if s.process.poll() is not None:
                    raise GescoError(f"the {s.name} exited during start-up (status {s.process.returncode}); see its messages above")
            pending = [n for n in pending if not healthy(n, args)]
            if pending and time.monotonic() > deadline:
                raise GescoError(f"not healthy after {args.startup_timeout:.0f} s: {', '.join(pending)}")
            time.sleep(0.2)
        if stopping["signal"] is None:
            public = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
            data_dir, budget_log = data_paths(args)
            default_log = default_data_dir().resolve() / BUDGET_LOG_NAME
            budget_cmd = "gesco budget" if budget_log == default_log else f"gesco budget {budget_log}"
            scheme = "https" if tls_files(args) else "http"
            print(
                "gesco up: all services are running\n"
                f"  sender    {scheme}://{public}:{args.sender_port}   (POST /transmit, docs at /docs)\n"
                f"  channel   grpc {public}:{args.channel_port}\n"
                f"  receiver  {scheme}://{public}:{args.receiver_port}   (GET /result/<id>), grpc {public}:{args.receiver_grpc_port}\n"
                f"  viewer    {scheme}://{public}:{args.receiver_port}/viewer   (the result viewer, open it in a browser)\n"
                f"  data      {data_dir}\n"
                f"  budget    {budget_log}   (`{budget_cmd}` shows it as a table)\n"
                + (f"  workers   {args.workers} receiver-worker process(es)\n" if args.workers else "") +
                "Press Ctrl-C to stop.",
                flush=True,
            )
        supervisor = supervise.Supervisor(services, launch, supervise.policy_from_args(args))
        while stopping["signal"] is None:
            supervisor.poll()  # restarts a dead child with backoff (GescoError with --no-restart)
            time.sleep(0.2)
        print("gesco up: stopping (sender, channel, receiver) ...", flush=True)
        return 0
    finally:
        stop_services([s for name in ("sender", "channel", "receiver") for s in services if s.name == name]
                      + [s for s in services if s.name.startswith("receiver-worker")])
        for sig, handler in previous.items():
            signal.signal(sig, handler)
