"""Warehouse URLs in messages: every secret masked, the user-info password and secret query values alike."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from pipelines.config import parse_config
from scoring.config import ConfigError
from warehouse import Warehouse, WarehouseError
from warehouse.urls import display_url, is_secret_query_key, mask_text, parse_url

KPI = {"id": "k", "name": "K", "metric": "mttr", "baseline": 10, "target": 2}
MINIMAL_SCORECARD = {"name": "S", "perspectives": [
    {"id": "p", "name": "P", "objectives": [{"id": "o", "name": "O", "kpis": [KPI]}]}]}


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql+psycopg://u@h/db?password=s3cret-pw", "postgresql+psycopg://u@h/db?password=***"),
        ("postgresql+psycopg://u:s3cret-pw@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgresql://u:s3cret-pw@h/db?sslmode=require&sslpassword=s3cret-pw&sslkey=/etc/client.key",
         "postgresql://u:***@h/db?sslmode=require&sslpassword=***&sslkey=/etc/client.key"),
        ("postgresql://h/db?PassWord=s3cret-pw&pass%77ord=s3cret-pw&auth_token=s3cret-pw&api-key=s3cret-pw",
         "postgresql://h/db?PassWord=***&pass%77ord=***&auth_token=***&api-key=***"),
        ("connection to 'postgresql://u@h:1/db?application_name=x&pwd=s3cret-pw' failed: refused",
         "connection to 'postgresql://u@h:1/db?application_name=x&pwd=*** failed: refused"),
        ("sqlite:///scorecard.db?mode=ro", "sqlite:///scorecard.db?mode=ro"),
        ("postgresql://u@h/db?password=", "postgresql://u@h/db?password="),
    ],
)  # fmt: skip
def test_mask_text_masks_every_secret_of_a_url(text, masked):
    assert mask_text(text) == masked
    assert display_url(text) == masked


def test_display_url_masks_the_secrets_of_a_url_object():
    url = make_url("postgresql+psycopg://u:s3cret-pw@h/db?password=s3cret-pw&sslpassword=a%26b&sslmode=require")
    assert display_url(url) == "postgresql+psycopg://u:***@h/db?password=***&sslmode=require&sslpassword=***"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("sslpassword", True), ("PASSWD", True), ("pwd", True), ("client_secret", True),
     ("access_token", True), ("api_key", True), ("key", True), ("credentials", True), ("pass%77ord", True),
     ("sslkey", False), ("ssl_key", False), ("passfile", False), ("sslcert", False), ("sslmode", False),
     ("keepalives", False), ("options", False), ("application_name", False)],
)  # fmt: skip
def test_which_query_parameters_hold_a_secret(name, secret):
    assert is_secret_query_key(name) is secret


@pytest.mark.parametrize("name", ["password", "sslpassword", "Auth.Token", "api-key", "sslkey", "ssl_key", "sslmode",
                                  "passfile"])
def test_the_config_refuses_the_same_query_parameters_it_masks(name):
    """One rule (warehouse.urls.is_secret_query_key): what is masked when shown is refused in the file."""
    data = {"warehouse": {"url": f"postgresql://h/db?sslmode=require&{name}=x"}, "scorecard": MINIMAL_SCORECARD}
    if is_secret_query_key(name):
        with pytest.raises(ConfigError, match=f"warehouse.url: holds a password \\(query parameter {name}\\)"):
            parse_config(data)
    else:
        assert parse_config(data).warehouse.url.endswith(f"{name}=x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://scorer@localhost/db?password=s3cret-pw", "unsupported warehouse database 'mysql'"),
        ("postgresql+psycopg://scorer@127.0.0.1:notaport/db?sslpassword=s3cret-pw", "invalid warehouse URL"),
        ("postgresql+psycopg://scorer@127.0.0.1:1/nowhere?password=s3cret-pw", "cannot open warehouse"),
    ],
)
def test_a_bad_url_with_a_query_password_raises_without_it(url, message):
    with pytest.raises(WarehouseError) as caught:
        Warehouse.connect(url)
    text = str(caught.value)
    assert message in text and "\n" not in text and "s3cret-pw" not in text
    assert "password=***" in text


def test_a_url_object_with_a_query_password_is_not_echoed_by_parse_url():
    with pytest.raises(WarehouseError) as caught:
        parse_url(make_url("mysql://scorer@localhost/db?password=s3cret-pw"))
    assert "s3cret-pw" not in str(caught.value)
