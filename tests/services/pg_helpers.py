"""A throw-away Postgres server for the tests: ``initdb`` in a temporary folder, a unix socket there.

The server listens on no TCP port (``listen_addresses=''``) and trusts local connections
of user ``gesco``. Run as root (as on these machines), ``initdb`` and ``pg_ctl`` run as
the ``postgres`` user through ``runuser``, which then owns the folder.

Binaries: ``GESCO_PG_BIN`` (a folder), else ``initdb`` on PATH, else
``/usr/lib/postgresql/<version>/bin`` (Debian's package). Without them the Postgres tests
skip with the reason, except when ``GESCO_REQUIRE_POSTGRES=1`` (set by ``.ci/run``): then
they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "gesco"


def find_bin() -> Path | None:
    """The folder of ``initdb`` / ``pg_ctl``, or ``None``."""
    if os.environ.get("GESCO_PG_BIN"):
        return Path(os.environ["GESCO_PG_BIN"])
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


class PostgresServer:
    """One Postgres server in a temporary folder; :meth:`database` makes an empty database and returns its URL."""

    def __init__(self, bin_dir: Path, fsync: bool = False) -> None:
        """``fsync``: durable commits (benchmarks); off for tests (faster, safe against a crash of the server process)."""
        self.bin = bin_dir
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="gesco-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} failed ({r.returncode}): {r.stdout[-1000:]} {r.stderr[-1000:]}\n"
                               f"{self.log.read_text()[-2000:] if self.log.exists() else ''}")
        return r

    def start(self) -> None:
        opts = f"-k {self.dir} -c listen_addresses='' -c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: roll back open transactions and disconnect everyone; ``immediate``: like a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{USER}@/{dbname}?host={self.dir}"

    def database(self) -> str:
        """A new empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
