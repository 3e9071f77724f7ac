"""Warehouse URLs: parsing with friendly defaults, and display without the password or other secrets."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from warehouse.errors import WarehouseError

SUPPORTED = ("sqlite", "postgresql")
# "postgresql://" would pick psycopg2, which the package does not install; psycopg 3 is the driver.
_DRIVER_DEFAULTS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_QUERY_PARAMETER = re.compile(r"([?&]([^=&?#\s'\"]+)=)([^&\s]*)")  # a value runs to the next & or space

# Query parameters that hold a secret: a name (any case, `_ - .` and %-escapes ignored) ending with
# one of these, such as libpq's password and sslpassword, auth_token or api_key; libpq's sslkey names
# the client key's file, not a secret. The one rule: the config refuses these names in a URL
# (pipelines/config.py) and every URL shown has their values masked.
SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "pass", "secret", "token", "credential", "credentials", "key")
NOT_SECRET_QUERY_KEYS = ("sslkey",)


def is_secret_query_key(name: str) -> bool:
    """Whether the URL query parameter `name` holds a secret (see SECRET_QUERY_KEYS)."""
    word = re.sub(r"[_.\-]", "", unquote_plus(name).lower())
    return word.endswith(SECRET_QUERY_KEYS) and word not in NOT_SECRET_QUERY_KEYS


def secret_query_keys(url: str) -> list[str]:
    """Names of the URL's query parameters that hold a secret (`?password=...`, `&sslpassword=...`)."""
    query = parse_qsl(url.partition("?")[2], keep_blank_values=True)
    return [name for name, _ in query if is_secret_query_key(name)]


def mask_text(text: str) -> str:
    """`text` with every secret of any URL in it replaced by ***: the password, secret query values."""
    text = _USERINFO_PASSWORD.sub(r"\1***@", text)
    return _QUERY_PARAMETER.sub(_mask_parameter, text)


def _mask_parameter(match: re.Match[str]) -> str:
    return match[1] + "***" if is_secret_query_key(match[2]) and match[3] else match[0]


def display_url(url: str | URL) -> str:
    """The URL for messages and logs: password and secret query values masked."""
    if isinstance(url, URL):
        return mask_text(url.render_as_string(hide_password=True))
    return mask_text(url)


def parse_url(url: str | URL) -> URL:
    """A SQLAlchemy URL for a supported database, or WarehouseError naming the (masked) URL."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise WarehouseError(f"invalid warehouse URL '{display_url(str(url))}'") from None
    parsed = parsed.set(drivername=_DRIVER_DEFAULTS.get(parsed.drivername, parsed.drivername))
    if parsed.get_backend_name() not in SUPPORTED:
        raise WarehouseError(
            f"unsupported warehouse database '{parsed.get_backend_name()}' in '{display_url(parsed)}'"
            " (use sqlite:///path.db or postgresql+psycopg://user@host/db)"
        )
    return parsed
