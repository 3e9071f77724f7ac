"""Escalation alerts to a chat webhook: one JSON POST of a Slack-compatible message, `{"text": ..., "blocks": [...]}`.

Slack incoming webhooks take that body as it is (`text` is the notification's fallback, `blocks` what the channel
shows); Mattermost and other Slack-compatible receivers read `text`. The URL is a secret (a Slack webhook URL
carries its token in the path): it is sent through the shared client (connectors.http: retries with backoff and
jitter on 429, 5xx and dropped connections, Retry-After honoured) as a secret-path client, so no message or log
line shows more of it than scheme and host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from connectors.http import VendorClient, VendorHttpError, endpoint

SOURCE = "alerts webhook"
ATTEMPTS = 5
# Slack's limits: a header's text, a section's text and the blocks of one message.
HEADER_CHARS, SECTION_CHARS, MAX_BLOCKS = 150, 3000, 50
_MRKDWN_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


class WebhookError(Exception):
    """The post failed for good: one line, the URL shown as scheme and host at most."""


def slack_payload(title: str, lines: list[str]) -> dict[str, Any]:
    """The message: a header with `title`, then the `lines` as bullets in as few sections as Slack allows."""
    bullets = [f"• {_escaped(line)}" for line in lines]
    header = {"type": "header", "text": {"type": "plain_text", "text": _clipped(title, HEADER_CHARS)}}
    sections = [{"type": "section", "text": {"type": "mrkdwn", "text": text}} for text in _packed(bullets)]
    return {"text": "\n".join([_escaped(title), *bullets]), "blocks": [header, *sections]}


def _escaped(text: str) -> str:
    """Slack reads `&`, `<` and `>` as markup (links, mentions): a KPI name holding them must show as typed."""
    for char, escape in _MRKDWN_ESCAPES:
        text = text.replace(char, escape)
    return text


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _packed(bullets: list[str]) -> list[str]:
    """Bullets joined into section texts of at most SECTION_CHARS, at most MAX_BLOCKS - 1 sections (the header is
    one block); what does not fit ends as "… and N more"."""
    sections: list[list[str]] = []
    size = 0
    for count, bullet in enumerate(bullets):
        bullet = _clipped(bullet, SECTION_CHARS)
        if sections and size + 1 + len(bullet) <= SECTION_CHARS:
            sections[-1].append(bullet)
            size += 1 + len(bullet)
            continue
        if len(sections) == MAX_BLOCKS - 1:
            sections[-1][-1] = f"… and {len(bullets) - count + 1} more"
            break
        sections.append([bullet])
        size = len(bullet)
    return ["\n".join(section) for section in sections]


def post_message(url: str, payload: dict[str, Any], *, sleep: Callable[[float], None] = time.sleep) -> None:
    """POST `payload` to the webhook at `url`, retried by the shared client; raises WebhookError (no secret in it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{SOURCE}: not an http(s) URL ({endpoint(url, with_path=False)})")
    client = VendorClient(SOURCE, url, {}, attempts=ATTEMPTS, sleep=sleep, secret_path=True)
    try:
        client.deliver(url, payload)
    except VendorHttpError as error:
        raise WebhookError(str(error)) from None
    finally:
        client.close()
