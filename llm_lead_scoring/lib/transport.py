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
ERR_DEADLINE = "deadline"  # not sent: the batch's time was up, or the provider timed out already

# a timed-out request is not sent again: a one-slot server would still be busy with it
RETRYABLE_KINDS = frozenset({ERR_RATE_LIMITED, ERR_SERVER, ERR_CONNECTION})
MIN_CALL_SECONDS = 1.0  # a call that cannot have this much time before the deadline is not sent


class ProviderSlots:
    """The calls one provider may serve at once, shared by every worker thread of a batch,
    and a breaker: once a call to it timed out, the rest of the batch is not sent to it."""

    def __init__(self, concurrency):
        self.size = max(int(concurrency or 1), 1)
        self.semaphore = threading.BoundedSemaphore(self.size)
        self.timed_out = False


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
    shown to any user); ``detail`` has an excerpt of it, for managers. Nothing is sent, and
    no retry is waited for, past ``request["deadline"]`` (a ``time.monotonic()`` value): the
    request timeout is cut to the time left.

    :param dict request: url, headers, payload, timeout, max_retries, provider_type,
        provider_id, provider_name, retry_after_cap, deadline, slots (``ProviderSlots``),
        all but the first three optional
    :param gate: asked before every HTTP attempt (``acquire(request)`` returns a refusal
        text or None) and told after it (``release(request, tokens_in, tokens_out)``)
    :return dict: success, content, error, detail, error_kind, status_code, latency_ms,
        tokens_in, tokens_out, attempts, provider_id, provider_name
    """
    max_retries = max(int(request.get("max_retries") or 0), 0)
    deadline = request.get("deadline")
    slots = request.get("slots")
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
        if slots and not slots.semaphore.acquire(timeout=_time_left(deadline)):
            result.update(error="The batch ran out of time before this call.")
            result["error_kind"] = ERR_DEADLINE
            break
        try:
            _attempt(request, result, gate, deadline, slots)
        finally:
            if slots:
                slots.semaphore.release()
        if result["error_kind"] in (ERR_BUDGET, ERR_DEADLINE) or result["success"]:
            break
        wait = result.pop("wait", None)
        if result["error_kind"] not in RETRYABLE_KINDS or wait == -1 or attempt >= max_retries:
            break
        wait = wait if wait is not None else backoff_delay(attempt)
        if deadline is not None and time.monotonic() + wait + MIN_CALL_SECONDS >= deadline:
            break  # no time left for another attempt
        sleep(wait)
        attempt += 1
    result.pop("wait", None)
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


def _time_left(deadline):
    """Seconds until ``deadline`` less the minimum a call needs (None: no deadline)."""
    if deadline is None:
        return None
    return max(deadline - time.monotonic() - MIN_CALL_SECONDS, 0.0)


def _attempt(request, result, gate, deadline, slots):
    """One HTTP attempt (or none, when the gate, the deadline or the breaker says no)."""
    left = _time_left(deadline)
    if (left is not None and left <= 0) or (slots and slots.timed_out):
        result.update(
            error="The batch ran out of time before this call."
            if not (slots and slots.timed_out)
            else "Not sent: the provider did not answer an earlier call of this batch in time.",
            error_kind=ERR_DEADLINE,
        )
        return
    refusal = gate.acquire(request) if gate else None
    if refusal:
        result.update(error=refusal, error_kind=ERR_BUDGET)
        return
    result["attempts"] += 1
    timeout = request.get("timeout") or 60
    if left is not None:
        timeout = min(timeout, left + MIN_CALL_SECONDS)
    multipart = request.get("multipart")  # audio transcription: model + file
    body = multipart if multipart else {"json": request["payload"]}
    try:
        response = _session().post(
            request["url"],
            headers=request["headers"],
            timeout=timeout,
            allow_redirects=False,
            **body,
        )
    except requests.Timeout:
        result.update(error="The provider did not answer in time.", error_kind=ERR_TIMEOUT)
        if slots:
            slots.timed_out = True
    except requests.RequestException as exc:
        result.update(
            error="Could not reach the provider (%s)." % type(exc).__name__,
            error_kind=ERR_CONNECTION,
        )
    else:
        _read_response(request, response, result, float(request.get("retry_after_cap") or 0))
    if gate:
        gate.release(request, result["tokens_in"], result["tokens_out"])


def _read_response(request, response, result, cap):
    result["status_code"] = status = response.status_code
    cap = cap or DEFAULT_RETRY_AFTER_CAP
    if 200 <= status < 300:
        _read_success(request, response, result)
    elif 300 <= status < 400:
        result.update(
            error="The provider answered with a redirect (HTTP %s), which is not "
            "followed: check the base URL." % status,
            error_kind=ERR_REFUSED,
        )
    elif not is_retryable_status(status):
        kind, error = ERR_REFUSED, "The provider refused the request (HTTP %s)."
        if status == 401:
            kind, error = ERR_AUTH, "The provider rejected the API key (HTTP %s)."
        elif status == 403:
            kind, error = ERR_AUTH, "The provider refused access (HTTP %s)."
        result.update(error=error % status, detail=_error_message(response), error_kind=kind)
    else:
        result.update(
            error="The provider answered HTTP %s." % status,
            detail=_error_message(response),
            error_kind=ERR_RATE_LIMITED if status == 429 else ERR_SERVER,
        )
        wait = parse_retry_after(response.headers)
        if wait is not None and wait > cap:
            result["error"] += " It asked to wait %.0f s, over the %.0f s cap." % (wait, cap)
            wait = -1  # give up
        result["wait"] = wait


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
        if request.get("multipart"):
            content, tokens_in, tokens_out = parse_transcription_body(body)
        elif request.get("tool_calling"):  # function calling: text and tool calls, as JSON
            content, tokens_in, tokens_out = answers.parse_tool_calls(
                request.get("provider_type"), body
            )
        else:
            content, tokens_in, tokens_out = answers.parse_provider_body(
                request.get("provider_type"), body
            )
    except answers.UnusableAnswer as exc:
        # what the model wrote (a truncated answer too), for managers: why it was refused
        result.update(error=str(exc), error_kind=ERR_INVALID, detail=answers.excerpt(body))
        return
    result.update(
        success=True,
        content=content,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        error=None,
        error_kind=None,
    )


def parse_transcription_body(body):
    """(text, tokens_in, tokens_out) of an ``audio/transcriptions`` JSON answer (OpenAI, Groq:
    ``{"text": ..., "usage": {...}}``; whisper models bill seconds, not tokens: 0, 0)."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise answers.UnusableAnswer("The provider's transcription has no text.")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    tokens_in = usage.get("input_tokens") if usage.get("type") == "tokens" else 0
    tokens_out = usage.get("output_tokens") if usage.get("type") == "tokens" else 0
    return body["text"].strip(), int(tokens_in or 0), int(tokens_out or 0)


def execute_with_failover(requests_in_order, sleep=time.sleep, gate=None):
    """Try each provider's request in turn; return the first success or the last failure.
    A budget refusal stops the failover (the budget is the company's, not the provider's).

    The result carries ``tried``: the providers tried, with their error.
    """
    tried = []
    result = None
    for request in requests_in_order:
        result = execute(request, sleep=sleep, gate=gate)
        if result["error_kind"] in (ERR_BUDGET, ERR_DEADLINE) and not result["attempts"]:
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
