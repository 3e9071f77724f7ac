"""Warehouse URLs in messages: every secret masked, the user-info password and secret query values alike."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from scoring import config
from warehouse import Warehouse, WarehouseError, urls
from warehouse.urls import display_url, is_secret_query_key, mask_text, parse_url


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


def test_the_config_refuses_the_same_query_parameters_it_masks():
    assert urls.is_secret_query_key is config.is_secret_query_key
    for name in ["password", "sslpassword", "Auth.Token", "api-key"]:
        assert config._secret_query_keys(f"postgresql://h/db?sslmode=require&{name}=x") == [name]
    for name in ["sslkey", "ssl_key", "sslmode", "passfile"]:
        assert config._secret_query_keys(f"postgresql://h/db?{name}=x") == []


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
