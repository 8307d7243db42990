"""Sharing one Optuna study between processes and machines: the storage URL's driver, a lock that makes schema
creation and "is there budget left? then ask" atomic across processes, and waiting for the others' trials.

Optuna creates its tables with plain `CREATE TYPE` / `CREATE TABLE`, so two processes opening a fresh PostgreSQL
database at once collide (`type "studydirection" already exists`), and two processes that check the trial budget
and then ask for a trial can both take the last one. Under the lock one goes first and the other finds the tables,
the study and the new trial there. PostgreSQL gets a session advisory lock (held by one connection, released when
that connection ends, so a killed process never leaves it taken); an SQLite file gets an flock on a file beside it.
"""

from __future__ import annotations

import fcntl
import math
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from mlplab.limits import CONNECT_TIMEOUT, seconds_from_env

ADVISORY_KEY = zlib.crc32(b"mlplab: one Optuna storage writer at a time")
WAIT_POLL_SECONDS = 1.0


def driver_url(url: str) -> str:
    """`postgresql://…` with the psycopg (3) driver named, whatever SQLAlchemy's default for the dialect is, and a
    connect_timeout (unless the URL sets one): a server that accepts and never answers is given up on after
    MLPLAB_CONNECT_TIMEOUT seconds (15 by default, as for a Dask scheduler), not psycopg's 130."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        if "connect_timeout=" not in rest.partition("?")[2]:
            seconds = max(1, math.ceil(seconds_from_env("MLPLAB_CONNECT_TIMEOUT", CONNECT_TIMEOUT)))
            rest += f"{'&' if '?' in rest else '?'}connect_timeout={seconds}"
        return f"postgresql+psycopg://{rest}"
    return url


@cache
def _engine(url: str) -> Any:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    return sqlalchemy.create_engine(url, poolclass=NullPool)


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
    import sqlalchemy

    with _engine(url).connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_KEY})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_KEY})


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def storage_lock(url: str) -> Any:
    """A context manager that one process at a time holds for `url` (PostgreSQL, an SQLite file; else no lock)."""
    url = driver_url(url)
    if url.startswith("postgresql+"):
        return _advisory_lock(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        database = Path(url.removeprefix("sqlite:///"))
        if database.parent.is_dir():
            return _file_lock(database.with_name(database.name + ".lock"))
    return nullcontext()


def others_running(study: optuna.Study, tag: str, dead: Callable[[Any], bool]) -> list[optuna.trial.FrozenTrial]:
    """Trials other live processes are running in this study."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.user_attrs.get("owner") != tag and not dead(t.user_attrs.get("owner"))
    ]


def wait_for_others(
    study: optuna.Study,
    tag: str,
    dead: Callable[[Any], bool],
    on_wait: Callable[[list[optuna.trial.FrozenTrial]], None] | None = None,
) -> None:
    """Block until no other live process has a trial running, so that every process reports the same study."""
    announced = False
    while running := others_running(study, tag, dead):
        if on_wait is not None and not announced:
            on_wait(running)
            announced = True
        time.sleep(WAIT_POLL_SECONDS)
