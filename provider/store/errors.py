"""The store's errors; each carries a hint that says what to do next."""

from __future__ import annotations

from circlecost.errors import CirclecostError


class StoreError(CirclecostError):
    """The store could not do what was asked."""


class StoreLockedError(StoreError):
    """Another process holds the store's write lock."""


class StoreCorruptError(StoreError):
    """The store file is not a readable DuckDB database."""


class StoreOutdatedError(StoreError):
    """The store was written by a newer circlecost than this one."""


class StoreConflictError(StoreError):
    """The change would break a rule of the store (one integration per organization, ...)."""


class StoreNotFoundError(StoreError):
    """No such integration, workspace or binding."""


class InvalidValueError(StoreError, ValueError):
    """A value the store cannot hold as given (a price, a window); names the field."""
