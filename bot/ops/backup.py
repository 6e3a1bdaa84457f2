"""`frontline backup` and `frontline restore`, for the embedded setup: one tar.gz with the SQLite database and
Rasa's SQLite tracker store (each copied with SQLite's online backup API, so a live WAL database is copied whole
and consistent), the model store, the complaints waiting on disk, and a manifest with every file's size and sha256.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from contextlib import closing
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TextIO

from sqlalchemy.engine import make_url

from bot import clock
from bot.config import Settings
from bot.ops import reforget
from bot.storage import forget_log

FORMAT = "frontline-backup/1"
MANIFEST = "manifest.json"
DATABASE, TRACKER = "database/frontline.db", "database/rasa-tracker.db"
MODELS, PENDING = "models", "pending-complaints"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
HEALTH_TIMEOUT = 2.0


class BackupError(Exception):
    """Backup or restore cannot go on; the message says why and what to do."""


def _stamp() -> str:
    return clock.now().strftime("%Y%m%dT%H%M%SZ")


def sqlite_path(database_url: str) -> Path | None:
    """The SQLite file of a database URL; None for PostgreSQL."""
    url = make_url(database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live database (WAL included) through SQLite's backup API, as one self-contained file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source, timeout=10)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # no -wal beside the copy


def schema_revision(database: Path) -> str | None:
    """Alembic's revision stored in an SQLite database."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None


class _Hashing(io.RawIOBase):
    """Reads a file while hashing exactly the bytes that go into the archive."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw, self.sha256 = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.sha256.update(data)
        return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path, prefix: str) -> list[tuple[str, Path]]:
    if not folder.is_dir():
        return []
    return [(f"{prefix}/{p.relative_to(folder).as_posix()}", p) for p in sorted(folder.rglob("*")) if p.is_file()]


def backup(settings: Settings, target: Path | None = None, out: TextIO | None = None) -> Path:
    """Write the archive (default var/backups/frontline-<time>.tar.gz); returns its path."""
    out = out or sys.stdout
    stamp = _stamp()
    if target is None:
        target = settings.var_dir / "backups" / f"frontline-{stamp}.tar.gz"
    elif target.is_dir():
        target = target / f"frontline-{stamp}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    database = sqlite_path(settings.database_url)
    # Forgets logged from this moment on are applied again by a restore (the copy may or may not hold them).
    copied_at = clock.now().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=target.parent) as staging_dir:
        staging = Path(staging_dir)
        entries: list[tuple[str, Path]] = []
        parts: list[str] = []
        revision = None
        if database is None:
            out.write(
                "DATABASE_URL is PostgreSQL: this archive does NOT hold the database nor Rasa's tracker store "
                "(both live in PostgreSQL). Back them up with pg_dump, e.g. `pg_dump -Fc -f frontline.dump "
                '"$DATABASE_URL"`; the archive holds the model store and the complaints waiting on disk.\n'
            )
        else:
            for name, source in ((DATABASE, database), (TRACKER, settings.rasa_tracker_db)):
                if source.exists():
                    copy_sqlite(source, staging / name)
                    entries.append((name, staging / name))
                    parts.append(name)
                else:
                    out.write(f"no {source.name} yet under {source.parent}: not in the archive\n")
            if (staging / DATABASE).exists():
                revision = schema_revision(staging / DATABASE)
        # Complaints on disk come and go while the action server runs: copy them first, then archive the copies.
        pending = _files(settings.pending_dir, PENDING)
        for name, source in pending:
            try:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, staging / name)
                entries.append((name, staging / name))
            except FileNotFoundError:  # stored by the action server meanwhile
                pass
        entries += _files(settings.models_dir, MODELS)  # models are written once, under their fingerprint
        parts += [MODELS, PENDING]
        partial = target.with_name(target.name + ".partial")
        files: list[dict[str, Any]] = []
        with tarfile.open(partial, "w:gz", compresslevel=3) as archive:
            for name, path in entries:
                info = archive.gettarinfo(str(path), arcname=name)
                with path.open("rb") as raw:
                    reader = _Hashing(raw)
                    archive.addfile(info, reader)
                files.append({"path": name, "size": info.size, "sha256": reader.sha256.hexdigest()})
            manifest = {
                "format": FORMAT,
                "created_at": clock.now().isoformat(timespec="seconds"),
                "database": "sqlite" if database is not None else "postgresql (not included: use pg_dump)",
                "schema_revision": revision,
                "database_copied_at": copied_at,
                "parts": parts,
                "files": files,
            }
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(clock.now().timestamp())
            archive.addfile(info, io.BytesIO(data))
        partial.replace(target)
    total = sum(f["size"] for f in files)
    out.write(
        f"backup written to {target}: {len(files)} files, {total / 1e6:.1f} MB before compression"
        f"{f', schema {revision}' if revision else ''}\n"
    )
    return target


def app_answers(settings: Settings) -> str | None:
    """The app's /health URL when something answers there (the app seems to run), else None."""
    host = "127.0.0.1" if settings.app_host in ("0.0.0.0", "", "::") else settings.app_host
    url = f"http://{host}:{settings.app_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT):
            return url
    except urllib.error.HTTPError:
        return url  # something answers there
    except OSError:
        return None


def _verified(archive_path: Path, staging: Path) -> dict[str, Any]:
    """Extract into staging and check the manifest: every file there, its size and sha256, nothing else."""
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            archive.extractall(staging, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive_path} is not a readable backup archive: {exc}") from None
    try:
        manifest: dict[str, Any] = json.loads((staging / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{archive_path} has no readable {MANIFEST}: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive_path} is not a {FORMAT} archive (format {manifest.get('format')!r})")
    listed = set()
    for entry in manifest.get("files", []):
        name = entry["path"]
        path = staging / PurePosixPath(name)
        listed.add(name)
        if not path.is_file():
            raise BackupError(f"{name} is listed in the manifest but missing from the archive")
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            raise BackupError(f"{name} does not match its sha256 in the manifest: the archive is corrupted")
    extra = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()} - listed - {MANIFEST}
    if extra:
        raise BackupError(f"files not in the manifest: {', '.join(sorted(extra))}")
    return manifest


def _move_aside(path: Path, aside: Path) -> None:
    if path.exists():
        aside.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(aside / path.name))


def restore(settings: Settings, archive_path: Path, *, force: bool = False, out: TextIO | None = None) -> Path:
    """Check the archive, then put its parts in place, keeping what they replace in var/before-restore-<time>/."""
    out = out or sys.stdout
    if not archive_path.is_file():
        raise BackupError(f"no archive at {archive_path}")
    running = app_answers(settings)
    if running and not force:
        raise BackupError(
            f"the app seems to be running ({running} answers): stop the app, the action server and Rasa "
            "first, or pass --force"
        )
    stamp = _stamp()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".restore-{stamp}-", dir=settings.var_dir))
    try:
        manifest = _verified(archive_path, staging)
        parts = manifest.get("parts", [])
        aside = settings.var_dir / f"before-restore-{stamp}"
        database = sqlite_path(settings.database_url)
        placed = []
        for name, target in ((DATABASE, database), (TRACKER, settings.rasa_tracker_db)):
            if name not in parts:
                continue
            if database is None:
                out.write(f"{name} not restored: DATABASE_URL is PostgreSQL (restore that with pg_restore)\n")
                continue
            assert target is not None
            for side in ("", *SQLITE_SIDE_FILES):  # a stale -wal beside the restored file would be replayed into it
                _move_aside(target.with_name(target.name + side), aside)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / name), str(target))
            placed.append(str(target))
        for name, target in ((MODELS, settings.models_dir), (PENDING, settings.pending_dir)):
            if name not in parts:
                continue
            _move_aside(target, aside)
            source = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.move(str(source), str(target))
            else:
                target.mkdir()
            placed.append(str(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    out.write(
        f"restored {len(manifest['files'])} files from {archive_path} (made {manifest.get('created_at')}, "
        f"schema {manifest.get('schema_revision')}) into {', '.join(placed)}\n"
    )
    since = datetime.fromisoformat(manifest.get("database_copied_at") or manifest["created_at"])
    if database is not None and DATABASE in parts:
        count = reforget.reapply_sqlite(settings, since, database, settings.rasa_tracker_db)
        out.write(
            f"forget log ({forget_log.log_path(settings.var_dir)}): {count} chat(s) of customers who asked to be "
            f"forgotten since the backup ({since.isoformat()}) forgotten again\n"
        )
    elif database is None:
        out.write(
            "once the database is back (pg_restore), apply the forgets made since that dump: "
            "`frontline reforget --since <the dump's time, e.g. 2026-01-31T09:30:00Z>`\n"
        )
    if aside.exists():
        out.write(f"what was there before is kept in {aside}\n")
    out.write("start the app (`frontline app`): it migrates the schema if this code is newer\n")
    return aside


def main_backup(settings: Settings, target: str | None) -> int:
    """`frontline backup [PATH]`."""
    try:
        backup(settings, Path(target) if target else None)
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main_restore(settings: Settings, archive: str, force: bool) -> int:
    """`frontline restore PATH [--force]`."""
    try:
        restore(settings, Path(archive), force=force)
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    return 0
