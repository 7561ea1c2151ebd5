"""Sending one notification: a signed webhook POST, a Slack message, or an email through the SMTP server.

A webhook carries ``Jobledger-Signature: t=UNIX_SECONDS,v1=HEX``, HEX the HMAC-SHA-256 under the destination's
secret of ``"{t}." + body`` (Stripe's scheme: the receiver recomputes it, compares in constant time, and refuses
a timestamp too old to stop replays), and ``Idempotency-Key``: the notification's id, the same on every attempt.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import http.client
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from queue_core.domain.notifications import Outcome
from queue_core.errors import InvalidInput

__all__ = [
    "EVENT_HEADER",
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "email_message",
    "post_json",
    "send_email",
    "sign",
    "signature_header",
    "slack_message",
    "summary",
    "verify_signature",
    "webhook_request",
]

SIGNATURE_HEADER = "Jobledger-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "Jobledger-Event"
DEFAULT_TOLERANCE_SECONDS = 300
# A destination answering these will answer them again: given up at once. Any other failure is retried.
_FOR_GOOD = frozenset(range(400, 500)) - {408, 409, 425, 429}
# Long subject lines (a run id is 36 characters) stay on one line; RFC 5322 allows 998 characters.
_MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998)
_TITLES = {
    "onStart": "started",
    "onSuccess": "succeeded",
    "onFailure": "failed",
    "onDurationWarning": "is running long",
    "onMissedTick": "missed a tick",
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA-256 of ``"{timestamp}." + body`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance: float = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the header's ``v1`` matches the body under ``secret``, its ``t`` recent enough."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), parts["v1"])


def summary(payload: Mapping[str, Any]) -> str:
    """One line saying what happened: ``run 1f2e… of nightly-report failed (NonZeroExitCode)``."""
    what = _TITLES.get(payload["event"], payload["event"])
    if payload.get("schedule"):
        subject = f"schedule {payload['schedule']}"
    elif payload.get("run"):
        subject = f"run {payload['run']} of {payload['definition']}"
    else:
        subject = f"workflow run {payload['workflow_run']} of {payload['workflow']}"
    reason = f" ({payload['reason']})" if payload.get("reason") else ""
    return f"jobledger: {subject} {what}{reason}"


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the fallback every client shows) and blocks."""
    fields = [
        f"*{key.replace('_', ' ')}*: {payload[key]}"
        for key in ("status", "reason", "exit_code", "started_at", "finished_at", "ticks")
        if payload.get(key) not in (None, "", [])
    ]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": summary(payload)}}]
    if fields:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(fields)}})
    if payload.get("log_excerpt"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{payload['log_excerpt']}```"}})
    if payload.get("console_url"):
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{payload['console_url']}|Open in jobledger>"}],
            }
        )
    return {"text": summary(payload), "blocks": blocks}


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Outcome:
    """POST ``body``; a 2xx reply is delivered, a 4xx other than a try-later one is refused for good."""
    try:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
        )
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return Outcome(delivered=True, status=reply.status)
    except urllib.error.HTTPError as exc:
        return Outcome(delivered=False, status=exc.code, error=f"HTTP {exc.code}", permanent=exc.code in _FOR_GOOD)
    except http.client.InvalidURL:  # will be as invalid next time: given up at once
        return Outcome(delivered=False, error="invalid URL: it holds a character HTTP does not allow", permanent=True)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(delivered=False, error=f"{type(exc).__name__}: {reason}"[:200])


def webhook_request(payload: Mapping[str, Any], secret: str | None, now: int) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a webhook: the payload as JSON, its id as the idempotency key, signed."""
    body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    headers = {IDEMPOTENCY_HEADER: str(payload["id"]), EVENT_HEADER: str(payload["event"])}
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature_header(secret, now, body)
    return body, headers


def email_message(payload: Mapping[str, Any], to: str, sender: str) -> EmailMessage:
    """A plain-text email of the event: its summary as the subject, every field, the link."""
    message = EmailMessage(policy=_MAIL_POLICY)
    message["Subject"] = summary(payload)
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = f"<{str(payload['id']).replace(':', '.')}@jobledger>"  # the same on every attempt
    lines = [summary(payload), ""]
    lines += [f"{key}: {value}" for key, value in payload.items() if key != "log_excerpt" and value not in (None, "")]
    if payload.get("log_excerpt"):
        lines += ["", "last lines of output:", str(payload["log_excerpt"])]
    message.set_content("\n".join(lines) + "\n")
    return message


def smtp_parts(url: str) -> tuple[str, str, int, str | None, bool]:
    """(scheme, host, port, user, starttls) of ``JOBLEDGER_SMTP_URL``; a password in it is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise InvalidInput("must be smtp://[USER@]HOST[:PORT] or smtps://...", "JOBLEDGER_SMTP_URL")
    if parts.password is not None:
        raise InvalidInput("carries a password; name a secret holding it instead", "JOBLEDGER_SMTP_URL")
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    starttls = parse_qs(parts.query).get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    user = unquote(parts.username) if parts.username else None
    return parts.scheme, parts.hostname, port, user, starttls


def send_email(url: str, password: str | None, message: EmailMessage, timeout: float) -> Outcome:
    """Hand ``message`` to the SMTP server; a 5xx refusal of the recipient is for good, the rest retried."""
    scheme, host, port, user, starttls = smtp_parts(url)
    try:
        smtp: smtplib.SMTP
        if scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if starttls:
                smtp.starttls(context=ssl.create_default_context())
            if user is not None and password is not None:
                smtp.login(user, password)
            smtp.send_message(message)
        return Outcome(delivered=True, status=250)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return Outcome(delivered=False, status=codes[0], error=f"recipient refused ({codes[0]})", permanent=True)
    except smtplib.SMTPResponseException as exc:
        return Outcome(delivered=False, status=exc.smtp_code, error=f"SMTP {exc.smtp_code}", permanent=False)
    except (smtplib.SMTPException, OSError) as exc:
        return Outcome(delivered=False, error=f"{type(exc).__name__}: {exc}"[:200])
