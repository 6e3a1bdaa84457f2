"""The declarative base every table shares: naming convention, timestamps, and UTC moments handed back aware."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import JSON, ColumnElement, CursorResult, DateTime, Dialect, Enum, MetaData, Result, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot import clock

utcnow = clock.now  # the app's one clock (bot/clock.py), the only one the storage layer uses


class UTCDateTime(TypeDecorator[datetime]):
    """A moment in UTC, handed back aware: SQLite keeps no time zone, so its naive values are read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a naive datetime would be stored without its time zone: pass an aware one")
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with the naming convention and timestamps every table carries."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads it so)

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def enum_column(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


def affected(result: Result[Any]) -> int:
    """How many rows an INSERT, UPDATE or DELETE changed (`Session.execute` is typed as returning a plain `Result`;
    for those statements it is a `CursorResult`, which counts them)."""
    return cast("CursorResult[Any]", result).rowcount


def string_length(column: ColumnElement[Any]) -> int:
    """The most characters a string column holds, read from the model so that validation cannot drift from it."""
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a string column of bounded length")
    return kind.length
