"""A throwaway PostgreSQL server: its own cluster in a temporary folder, on a spare loopback port, never the machine's own.

A test that restarts PostgreSQL under load starts one of these, points a stack at it, and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.stack import free_port

DATABASE = "frontline"
SERVER_OWNER = "postgres"  # PostgreSQL refuses to run as root: as root, the cluster belongs to this user


class PostgresMissing(RuntimeError):
    """initdb/pg_ctl (or, as root, an unprivileged user to run them as) are not on this machine."""


def find_tools() -> tuple[Path, pwd.struct_passwd | None]:
    """The folder holding initdb and pg_ctl (from PATH, else the newest /usr/lib/postgresql/*/bin), and, as root,
    the user to run them as."""
    candidates = []
    found = shutil.which("pg_ctl")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)]
    bin_dir = next(
        (
            folder
            for folder in candidates
            if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "createdb"))
        ),
        None,
    )
    if bin_dir is None:
        raise PostgresMissing("initdb and pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin")
    if os.geteuid() != 0:
        return bin_dir, None
    try:
        owner = pwd.getpwnam(SERVER_OWNER)
    except KeyError:
        raise PostgresMissing(
            f"running as root, PostgreSQL needs another user to run as, and there is no {SERVER_OWNER!r}"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresMissing("running as root, PostgreSQL needs runuser to run as another user")
    return bin_dir, owner


def _version(path: str) -> int:
    number = Path(path).parent.name
    return int(number) if number.isdigit() else 0


class PostgresServer:
    """One cluster: initdb'd into `root`, listening on 127.0.0.1:`port` and a Unix socket in `root`."""

    def __init__(self, root: Path, bin_dir: Path, owner: pwd.struct_passwd | None) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = free_port()
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.logfile = root / "postgres.log"
        self.sockets.mkdir()
        self._as_owner: list[str] = []
        if owner is not None:
            self._as_owner = [str(shutil.which("runuser")), "-u", owner.pw_name, "--"]
            for folder in (root, self.sockets):
                os.chown(folder, owner.pw_uid, owner.pw_gid)

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 90) -> str:
        command = [*self._as_owner, str(self.bin_dir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stdout}{done.stderr}\n{self.log()}")
        return done.stdout

    def init(self) -> None:
        """A new cluster: superuser `postgres`, trust authentication (it listens on loopback and its own socket only)."""
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: disconnect every client, finish cleanly; `immediate`: as a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        done = subprocess.run(
            [*self._as_owner, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str = DATABASE) -> None:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def log(self) -> str:
        """What the server logged, for failure messages."""
        with contextlib.suppress(OSError):
            return self.logfile.read_text(errors="replace")[-3000:]
        return ""


@contextmanager
def throwaway_postgres() -> Iterator[PostgresServer]:
    """A started server with an empty database `frontline`; stopped and removed on exit, whatever happened.
    PostgresMissing when this machine cannot run one."""
    bin_dir, owner = find_tools()
    root = Path(tempfile.mkdtemp(prefix="frontline-pg-"))  # not under pytest's tmp, which only root may enter
    try:
        server = PostgresServer(root, bin_dir, owner)
        server.init()
        server.start()
        try:
            server.create_database()
            yield server
        finally:
            if server.running():
                server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
