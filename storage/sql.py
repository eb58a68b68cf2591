"""The one SQLite driver storage/ uses: ``sqlcipher3`` (SQLCipher 4), so that the same connections open a
plain gallery and an encrypted one. Its API is the standard library's ``sqlite3`` module's, so the type
checker is shown ``sqlite3``; at run time every connection and every error class comes from sqlcipher3.

storage/ modules may name ``sqlite3.Connection`` in annotations, but connect and catch errors only through
this module (tests/test_gallery_cipher.py checks it): ``sqlcipher3.dbapi2.Error`` is not a
``sqlite3.Error``, so an ``except sqlite3.Error`` would let every driver error through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite3 import Connection, DatabaseError, Error, OperationalError, connect, sqlite_version
else:
    from sqlcipher3.dbapi2 import Connection, DatabaseError, Error, OperationalError, connect, sqlite_version

__all__ = ["Connection", "DatabaseError", "Error", "OperationalError", "connect", "sqlite_version"]
