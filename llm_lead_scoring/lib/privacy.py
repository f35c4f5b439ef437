"""What may leave Odoo in a text sent to an LLM, and what may come back from research.

Plain Python (no ORM): the gateway (``llm.service._request``) applies it to every text.
"""

import re

EMAIL_MARK = "[email]"
PHONE_MARK = "[phone]"
NAME_MARK = "[contact]"
REMOVED_MARK = "[not in the lead's data]"

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# a run of digits with the usual separators, 7 to 15 digits in all (E.164); dates are kept
PHONE_RE = re.compile(r"(?<![\w/.,])(?:\+|\b00)?\(?\d[\d\s().\-/]{5,}\d\b")
DATE_RE = re.compile(r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\s*$")
URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
DOMAIN_RE = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,24}\b", re.IGNORECASE)
MIN_NAME_PART = 3


def _digits(text):
    return re.sub(r"\D", "", text)


def _is_phone(candidate):
    return 7 <= len(_digits(candidate)) <= 15 and not DATE_RE.match(candidate)


def name_terms(names):
    """The words to hide for these contact names: each full name and each part of at
    least three letters, longest first (so 'Ann Lee-Smith' goes before 'Ann')."""
    terms = set()
    for name in names or ():
        name = (name or "").strip()
        if not name or "@" in name:
            continue
        terms.add(name)
        terms.update(part for part in re.split(r"[\s,]+", name) if len(part) >= MIN_NAME_PART)
    return sorted(terms, key=len, reverse=True)


def redact(text, names=()):
    """``text`` without e-mail addresses, phone numbers and the given contact names."""
    if not text:
        return text
    text = EMAIL_RE.sub(EMAIL_MARK, text)
    text = PHONE_RE.sub(lambda m: PHONE_MARK if _is_phone(m.group(0)) else m.group(0), text)
    terms = name_terms(names)
    if terms:
        pattern = re.compile(
            r"(?<!\w)(?:%s)(?!\w)" % "|".join(re.escape(t) for t in terms), re.IGNORECASE
        )
        text = pattern.sub(NAME_MARK, text)
    return text


def _host(url):
    url = re.sub(r"^(?:https?://)", "", url, flags=re.IGNORECASE)
    return url.split("/", 1)[0].split(":", 1)[0].lower().rstrip(".")


def known_facts(text):
    """The domains, e-mail addresses and phone digits found in ``text`` (the lead's data)."""
    text = text or ""
    emails = {e.lower() for e in EMAIL_RE.findall(text)}
    domains = {d.lower() for d in DOMAIN_RE.findall(text)}
    domains.update(e.split("@", 1)[1] for e in emails)
    domains.update(_host(u) for u in URL_RE.findall(text))
    phones = {_digits(p) for p in PHONE_RE.findall(text) if _is_phone(p)}
    return {"emails": emails, "domains": domains, "phones": phones}


def _known_domain(host, domains):
    host = host.lower()
    if host.startswith("www."):
        host = host[4:]
    return any(host == d or host.endswith("." + d) or d == "www." + host for d in domains)


def keep_known(answer, known):
    """``answer`` where every URL, domain, e-mail address and phone number that is not in
    the lead's own data (``known_facts``) is replaced: a model must not invent contacts."""
    if not answer:
        return answer

    def email(match):
        return match.group(0) if match.group(0).lower() in known["emails"] else REMOVED_MARK

    def url(match):
        value = match.group(0).rstrip(".,;:!?")
        tail = match.group(0)[len(value) :]
        return (value if _known_domain(_host(value), known["domains"]) else REMOVED_MARK) + tail

    def domain(match):
        value = match.group(0)
        if value == REMOVED_MARK or _known_domain(value, known["domains"]):
            return value
        return REMOVED_MARK

    def phone(match):
        value = match.group(0)
        if not _is_phone(value) or _digits(value) in known["phones"]:
            return value
        return REMOVED_MARK

    # placeholders keep the kept e-mails and URLs out of the domain pass
    kept = []

    def hold(value):
        kept.append(value)
        return "\x00%d\x00" % (len(kept) - 1)

    answer = EMAIL_RE.sub(lambda m: hold(email(m)), answer)
    answer = URL_RE.sub(lambda m: hold(url(m)), answer)
    answer = DOMAIN_RE.sub(domain, answer)
    answer = PHONE_RE.sub(phone, answer)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], answer)
