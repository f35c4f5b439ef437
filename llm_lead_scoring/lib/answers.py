"""Reading what an LLM provider answers: the provider's envelope, then our JSON contract."""

import json
import math
import re

ANALYSIS_KEYS = ("clarity", "summary", "strengths", "risks", "next_action")
# the contract of a lead analysis as a JSON schema, sent to providers that can enforce it
ANALYSIS_SCHEMA = {
    "type": "object",
    "properties": {
        "clarity": {"type": "number", "minimum": 0, "maximum": 100},
        "summary": {"type": "string"},
        "strengths": {"type": "array", "items": {"type": "string"}},
        "risks": {"type": "array", "items": {"type": "string"}},
        "next_action": {"type": "string"},
        "signals": {
            "type": "object",
            "properties": {
                key: {"type": "boolean"} for key in ("budget", "timeline", "decision_maker", "need")
            },
        },
        # the BANT scorecard (lib/qualification.py): each item's state and the sentence of
        # the lead's texts it was taken from (checked: dropped when not in the text sent)
        "qualification": {
            "type": "object",
            "properties": {
                key: {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["unknown", "partly", "confirmed"]},
                        "evidence": {"type": "string"},
                    },
                    "required": ["status", "evidence"],
                }
                for key in ("budget", "authority", "need", "timeline")
            },
        },
    },
    "required": ["clarity", "summary", "strengths", "risks", "next_action"],
}
SIGNAL_KEYS = ("budget", "timeline", "decision_maker", "need")
MAX_LIST_ITEMS = 8
MAX_TEXT = 2000
# bounds added to a schema for servers whose grammar enforces them (llama.cpp, Ollama,
# vLLM): a small model cannot ramble inside a string until max_tokens or the timeout
BOUNDED_TEXT = 300
BOUNDED_ITEMS = 3

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class UnusableAnswer(ValueError):
    """The provider answered, but not with something we can use."""


def bounded_schema(schema, text=BOUNDED_TEXT, items=BOUNDED_ITEMS):
    """A copy of ``schema`` where every free string has a ``maxLength`` and every array a
    ``maxItems`` (kept when the schema sets them): the answer always ends within bounds."""
    if not isinstance(schema, dict):
        return schema
    bounded = dict(schema)
    if bounded.get("type") == "string" and "enum" not in bounded:
        bounded.setdefault("maxLength", text)
    if bounded.get("type") == "array":
        bounded.setdefault("maxItems", items)
        if isinstance(bounded.get("items"), dict):
            bounded["items"] = bounded_schema(bounded["items"], min(text, 160), items)
    if isinstance(bounded.get("properties"), dict):
        bounded["properties"] = {
            key: bounded_schema(value, text, items) for key, value in bounded["properties"].items()
        }
    return bounded


def _envelope(provider_type, body):
    """What a provider's JSON body holds, in one shape: ``(text, tool_calls, finish_reason,
    tokens_in, tokens_out)``, ``tool_calls`` as ``[{"id", "name", "arguments": dict}]`` (calls
    whose arguments are not a JSON object are left out).

    Anthropic's Messages API (``content`` blocks, ``tool_use``) and the OpenAI chat-completions
    shape (OpenAI, Groq and every OpenAI-compatible server: ``choices[0].message``,
    ``tool_calls``) are understood; a body without either is an unusable answer.
    """
    if not isinstance(body, dict):
        raise UnusableAnswer("The provider's answer is not a JSON object.")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    calls = []
    if provider_type == "anthropic":
        blocks = body.get("content")
        if not isinstance(blocks, list):
            raise UnusableAnswer("The provider's answer has no content.")
        blocks = [block for block in blocks if isinstance(block, dict)]
        text = "".join(block.get("text", "") for block in blocks if block.get("type") == "text")
        for block in blocks:
            if block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
                calls.append(
                    {"id": block.get("id"), "name": block.get("name"), "arguments": block["input"]}
                )
        finish = body.get("stop_reason")
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    else:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise UnusableAnswer("The provider's answer has no choices.")
        message = choices[0].get("message")
        message = message if isinstance(message, dict) else {}
        text = message.get("content")
        for call in message.get("tool_calls") or []:
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments or "{}")
                except ValueError:
                    arguments = None
            if isinstance(arguments, dict):
                calls.append(
                    {"id": call.get("id"), "name": function.get("name"), "arguments": arguments}
                )
        finish = choices[0].get("finish_reason")
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return text, calls, finish, _int(tokens_in), _int(tokens_out)


def parse_provider_body(provider_type, body):
    """Return (content, tokens_in, tokens_out) from a provider's JSON body (see ``_envelope``
    for the shapes understood). Anthropic's structured output is asked as a forced tool call:
    its input is the JSON answer."""
    text, calls, finish, tokens_in, tokens_out = _envelope(provider_type, body)
    if provider_type == "anthropic" and calls:
        content = json.dumps(calls[0]["arguments"], ensure_ascii=False)
    else:
        content = text
    if finish in ("length", "max_tokens"):
        raise UnusableAnswer(
            "The answer was truncated at the maximum number of tokens (the model did not stop)."
        )
    if not isinstance(content, str) or not content.strip():
        raise UnusableAnswer(
            "The provider's answer is empty (with a local server, check the model's chat "
            "template)."
        )
    return content, tokens_in, tokens_out


def excerpt(body, limit=250):
    """The start of the text a provider's body holds (OpenAI or Anthropic shape), or ''."""
    shape = "anthropic" if isinstance(body, dict) and isinstance(body.get("content"), list) else ""
    try:
        text = _envelope(shape, body)[0]
    except UnusableAnswer:
        return ""
    return (text if isinstance(text, str) else "").strip()[:limit]


# what an answer must never contain: our own prompt's markers and placeholders
PROMPT_MARKERS = ("<lead_data>", "</lead_data>", "<message>", "</message>")
PLACEHOLDER = re.compile(r"<(?:one|number|short|true|subject)\b[^>]*>", re.IGNORECASE)
WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


def check_text(text, prompt_texts=(), field="answer", min_words=1, max_chars=None):
    """Refuse a text that echoes the prompt, is a JSON dump, keeps a placeholder of the
    prompt, has too few real words or is too long; return it stripped."""
    text = (text or "").strip()
    if any(marker in text for marker in PROMPT_MARKERS):
        raise UnusableAnswer("The AI %s repeats the data markers of the prompt." % field)
    for prompt in prompt_texts:
        chunk = (prompt or "").strip()[:200]
        if len(chunk) >= 40 and chunk in text:
            raise UnusableAnswer("The AI %s repeats the prompt." % field)
    if PLACEHOLDER.search(text):
        raise UnusableAnswer("The AI %s keeps a placeholder of the prompt." % field)
    stripped = text.lstrip("`").lstrip()
    if stripped[:1] in "{[" and re.search(r'"\w+"\s*:', stripped):
        raise UnusableAnswer("The AI %s is a JSON dump, not text." % field)
    if len(WORD.findall(text)) < min_words:
        raise UnusableAnswer("The AI %s has too few real words." % field)
    if max_chars and len(text) > max_chars:
        raise UnusableAnswer(
            "The AI %s is too long (%s characters, at most %s)." % (field, len(text), max_chars)
        )
    return text


# a number as our reports write them: digits, thousands separated by commas, a decimal point
NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def numbers_in(text):
    """The numbers written in ``text``, as floats ("1,250.50" is 1250.5)."""
    return {float(match.replace(",", "")) for match in NUMBER.findall(text or "")}


def check_numbers(text, source_texts, field="answer"):
    """Refuse a text that quotes a number written in none of ``source_texts`` (the data the
    model was given): a figure it made up, or computed itself; return the text."""
    allowed = set().union(*(numbers_in(source) for source in source_texts))
    invented = sorted(number for number in numbers_in(text) if number not in allowed)
    if invented:
        raise UnusableAnswer(
            "The AI %s quotes numbers that are not in its data: %s."
            % (field, ", ".join("%g" % number for number in invented[:5]))
        )
    return text


def _int(value):
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def extract_json_object(text):
    """The first JSON object in ``text``: bare, inside code fences or surrounded by prose."""
    if not isinstance(text, str) or not text.strip():
        raise UnusableAnswer("The AI answer is empty.")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for match in re.finditer(r"\{", candidate):
            try:
                obj, _end = decoder.raw_decode(candidate, match.start())
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    raise UnusableAnswer("The AI answer contains no JSON object.")


def _clean_text(value, field):
    if not isinstance(value, str):
        raise UnusableAnswer("The AI answer's '%s' is not text." % field)
    return value.strip()[:MAX_TEXT]


def _clean_list(value, field):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UnusableAnswer("The AI answer's '%s' is not a list of texts." % field)
    return [v.strip()[:500] for v in value if v.strip()][:MAX_LIST_ITEMS]


def _plain(text):
    """Lower-case words only: how a copied value is recognised whatever its punctuation."""
    return " ".join(WORD.findall((text or "").lower()))


def check_not_copied(text, data_texts, field):
    """Refuse a text that only repeats the lead's data: a field's value ("Le Club SARL",
    the stage "New") or a passage of its description, instead of the model's own words."""
    plain = _plain(text)
    if not plain:
        return text
    for value in data_texts:
        value = _plain(value)
        if value and (plain == value or (len(plain) >= 40 and plain in value)):
            raise UnusableAnswer(
                "The AI %s copies the lead's data instead of assessing it." % field
            )
    return text


def parse_analysis(content, data_texts=()):
    """Validate the lead analysis contract; raise UnusableAnswer when it does not hold.

    :param data_texts: the values of the lead data sent (texts): a summary or next action
        that only repeats one of them is refused
    """
    obj = extract_json_object(content)
    missing = [k for k in ANALYSIS_KEYS if k not in obj]
    if missing:
        raise UnusableAnswer("The AI answer misses: %s." % ", ".join(missing))
    clarity = obj["clarity"]
    if isinstance(clarity, bool) or not isinstance(clarity, (int, float)):
        raise UnusableAnswer("The AI answer's clarity is not a number.")
    if math.isnan(clarity) or not 0 <= clarity <= 100:
        raise UnusableAnswer("The AI answer's clarity %s is not between 0 and 100." % clarity)
    summary = _clean_text(obj["summary"], "summary")
    if not summary:
        raise UnusableAnswer("The AI answer's summary is empty.")
    check_text(summary, field="summary", min_words=3)
    check_not_copied(summary, data_texts, "summary")
    next_action = check_text(
        _clean_text(obj["next_action"], "next_action"), field="next action", min_words=2
    )
    check_not_copied(next_action, data_texts, "next action")
    signals = obj.get("signals")
    signals = {
        key: signals[key]
        for key in SIGNAL_KEYS
        if isinstance(signals, dict) and isinstance(signals.get(key), bool)
    }
    qualification = obj.get("qualification")
    return {
        "signals": signals,
        # checked against the lead's texts by the caller (qualification.check_llm)
        "qualification": {
            key: value
            for key, value in qualification.items()
            if key in ("budget", "authority", "need", "timeline") and isinstance(value, dict)
        }
        if isinstance(qualification, dict)
        else {},
        "clarity": float(clarity),
        "summary": summary,
        "strengths": [t for t in _clean_list(obj["strengths"], "strengths") if WORD.search(t)],
        "risks": [t for t in _clean_list(obj["risks"], "risks") if WORD.search(t)],
        "next_action": next_action,
    }


def parse_tool_calls(provider_type, body):
    """``(content, tokens_in, tokens_out)`` of an answer to a request with ``tools``
    (function calling): ``content`` is JSON ``{"text": str, "tool_calls": [{"id", "name",
    "arguments": dict}]}`` (see ``_envelope`` for the shapes understood)."""
    text, calls, _finish, tokens_in, tokens_out = _envelope(provider_type, body)
    if not calls and not (isinstance(text, str) and text.strip()):
        raise UnusableAnswer("The provider's answer has neither text nor tool calls.")
    content = json.dumps({"text": text or "", "tool_calls": calls}, ensure_ascii=False)
    return content, tokens_in, tokens_out
