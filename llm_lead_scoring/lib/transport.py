"""The one HTTP seam to LLM providers, with retries.

Runs in worker threads: it must not touch the ORM. A request is a plain dict built in the
main thread by ``llm.provider._prepare_request``; the result is a plain dict written back to
the database in the main thread.
"""

import email.utils
import logging
import random
import threading
import time
from datetime import datetime, timezone

import requests

from . import answers

_logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 429})
DEFAULT_RETRY_AFTER_CAP = 30.0  # seconds: a longer wait asked by the server gives up at once
BACKOFF_BASE = 0.5  # seconds
BACKOFF_MAX = 8.0  # seconds

# error kinds, stable strings stored on leads and providers
ERR_AUTH = "auth"
ERR_REFUSED = "refused"
ERR_RATE_LIMITED = "rate_limited"
ERR_TIMEOUT = "timeout"
ERR_CONNECTION = "connection"
ERR_SERVER = "server"
ERR_INVALID = "invalid_answer"
ERR_BUDGET = "budget"  # refused before any HTTP: the company's AI budget is used up

RETRYABLE_KINDS = frozenset({ERR_RATE_LIMITED, ERR_SERVER, ERR_TIMEOUT, ERR_CONNECTION})

_local = threading.local()


def is_retryable_status(status):
    return status in RETRYABLE_STATUS or status >= 500


def parse_retry_after(headers, now=None):
    """Seconds to wait as asked by the server, or None.

    ``retry-after-ms`` (OpenAI) wins over ``Retry-After``, which is either seconds or an
    HTTP date (RFC 9110).
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    milliseconds = _to_float(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000.0, 0.0)
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    seconds = _to_float(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max((when - now).total_seconds(), 0.0)


def _to_float(value):
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def backoff_delay(attempt, rand=random.random):
    """Exponential backoff with jitter: attempt 0 -> ~0.5 s, 1 -> ~1 s, 2 -> ~2 s ..."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * (2**attempt))
    return ceiling * (0.5 + rand() / 2.0)


def _error_message(response):
    """A short, key-free message from an error body (JSON 'error' objects or text)."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or error)[:200]
    if error:
        return str(error)[:200]
    return str(body)[:200]


def _session():
    """One session per thread keeps connections alive between the calls of a batch."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def execute(request, sleep=time.sleep, gate=None):
    """POST ``request`` with retries; never raises for network or provider errors.

    Redirects are not followed. ``error`` never contains the provider's answer (it may be
    shown to any user); ``detail`` has an excerpt of it, for managers.

    :param dict request: url, headers, payload, timeout, max_retries, provider_type,
        provider_id, provider_name, retry_after_cap (optional)
    :param gate: asked before every HTTP attempt (``acquire(request)`` returns a refusal
        text or None) and told after it (``release(request, tokens_in, tokens_out)``)
    :return dict: success, content, error, detail, error_kind, status_code, latency_ms,
        tokens_in, tokens_out, attempts, provider_id, provider_name
    """
    max_retries = max(int(request.get("max_retries") or 0), 0)
    cap = float(request.get("retry_after_cap") or DEFAULT_RETRY_AFTER_CAP)
    result = {
        "success": False,
        "content": None,
        "error": None,
        "detail": None,
        "error_kind": None,
        "status_code": None,
        "latency_ms": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "attempts": 0,
        "provider_id": request.get("provider_id"),
        "provider": request.get("provider_name"),
        "model": (request.get("payload") or {}).get("model"),
    }
    started = time.monotonic()
    attempt = 0
    while True:
        refusal = gate.acquire(request) if gate else None
        if refusal:
            result.update(error=refusal, error_kind=ERR_BUDGET)
            break
        result["attempts"] = attempt + 1
        wait = None
        try:
            response = _session().post(
                request["url"],
                json=request["payload"],
                headers=request["headers"],
                timeout=request.get("timeout") or 60,
                allow_redirects=False,
            )
        except requests.Timeout:
            result.update(error="The provider did not answer in time.", error_kind=ERR_TIMEOUT)
        except requests.RequestException as exc:
            result.update(
                error="Could not reach the provider (%s)." % type(exc).__name__,
                error_kind=ERR_CONNECTION,
            )
        else:
            result["status_code"] = response.status_code
            if 200 <= response.status_code < 300:
                _read_success(request, response, result)
            elif 300 <= response.status_code < 400:
                result.update(
                    error="The provider answered with a redirect (HTTP %s), which is not "
                    "followed: check the base URL." % response.status_code,
                    error_kind=ERR_REFUSED,
                )
            elif not is_retryable_status(response.status_code):
                kind, error = ERR_REFUSED, "The provider refused the request (HTTP %s)."
                if response.status_code == 401:
                    kind, error = ERR_AUTH, "The provider rejected the API key (HTTP %s)."
                elif response.status_code == 403:
                    kind, error = ERR_AUTH, "The provider refused access (HTTP %s)."
                result.update(
                    error=error % response.status_code,
                    detail=_error_message(response),
                    error_kind=kind,
                )
            else:
                kind = ERR_RATE_LIMITED if response.status_code == 429 else ERR_SERVER
                result.update(
                    error="The provider answered HTTP %s." % response.status_code,
                    detail=_error_message(response),
                    error_kind=kind,
                )
                wait = parse_retry_after(response.headers)
                if wait is not None and wait > cap:
                    result["error"] += " It asked to wait %.0f s, over the %.0f s cap." % (
                        wait,
                        cap,
                    )
                    wait = -1  # give up
        if gate:
            gate.release(request, result["tokens_in"], result["tokens_out"])
        retryable = result["error_kind"] in RETRYABLE_KINDS
        if result["success"] or not retryable or wait == -1 or attempt >= max_retries:
            break
        sleep(wait if wait is not None else backoff_delay(attempt))
        attempt += 1
    result["latency_ms"] = int((time.monotonic() - started) * 1000)
    _logger.debug(
        "LLM call to %s: success=%s kind=%s attempts=%s in %s ms",
        result["provider"],
        result["success"],
        result["error_kind"],
        result["attempts"],
        result["latency_ms"],
    )
    return result


def _read_success(request, response, result):
    try:
        body = response.json()
    except ValueError:
        result.update(
            error="The provider answered with something that is not JSON.",
            error_kind=ERR_INVALID,
        )
        return
    try:
        content, tokens_in, tokens_out = answers.parse_provider_body(
            request.get("provider_type"), body
        )
    except answers.UnusableAnswer as exc:
        result.update(error=str(exc), error_kind=ERR_INVALID)
        return
    result.update(
        success=True,
        content=content,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        error=None,
        error_kind=None,
    )


def execute_with_failover(requests_in_order, sleep=time.sleep, gate=None):
    """Try each provider's request in turn; return the first success or the last failure.
    A budget refusal stops the failover (the budget is the company's, not the provider's).

    The result carries ``tried``: the providers tried, with their error.
    """
    tried = []
    result = None
    for request in requests_in_order:
        result = execute(request, sleep=sleep, gate=gate)
        if result["error_kind"] == ERR_BUDGET and not result["attempts"]:
            break
        tried.append(
            {
                "provider_id": result["provider_id"],
                "provider": result["provider"],
                "model": result["model"],
                "success": result["success"],
                "error": result["error"],
                "detail": result["detail"],
                "error_kind": result["error_kind"],
                "attempts": result["attempts"],
                "tokens_in": result["tokens_in"],
                "tokens_out": result["tokens_out"],
                "latency_ms": result["latency_ms"],
            }
        )
        if result["success"]:
            break
    if result is None:
        result = {
            "success": False,
            "content": None,
            "error": "No LLM provider is configured.",
            "detail": None,
            "error_kind": None,
            "provider_id": None,
            "provider": None,
            "latency_ms": 0,
            "tokens_in": 0,
            "tokens_out": 0,
            "attempts": 0,
            "status_code": None,
        }
    result["tried"] = tried
    return result
