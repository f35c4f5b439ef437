"""Rule-based lead scoring: works with no LLM at all (the out-of-the-box default).

Every function takes plain values (dicts, strings, numbers) so it is cheap to test and to run
over thousands of leads.
"""

import re

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# (key, label, points, critical)
COMPLETENESS_FIELDS = (
    ("contact_name", "contact name", 15, True),
    ("company", "company", 15, False),
    ("email", "valid email", 20, True),
    ("phone", "phone", 15, True),
    ("description", "description of the need", 15, False),
    ("address", "address", 10, False),
    ("expected_revenue", "expected revenue", 10, False),
)

_BUDGET = re.compile(
    r"(budget|\$|€|£|usd|eur|gbp|\b\d+\s?k\b|\b\d[\d,.\s]*\s?(dollars|euros|pounds)\b|price|cost)",
    re.IGNORECASE,
)
_TIMELINE = re.compile(
    r"(\bq[1-4]\b|deadline|by (the )?(end|next|mid)|within|\bweeks?\b|\bmonths?\b|\bdays?\b|"
    r"asap|urgent|january|february|march|april|may|june|july|august|september|october|"
    r"november|december|\b20\d\d\b|go[- ]live|launch)",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"(\bceo\b|\bcfo\b|\bcto\b|\bcoo\b|director|head of|owner|founder|vp\b|vice president|"
    r"decision|approv|procurement|purchasing|sign(ed|ing)? off|board)",
    re.IGNORECASE,
)
_NEED = re.compile(
    r"(\b\d+\s?(users|seats|licen[cs]es|units|employees|people|sites|stores|pieces)\b|"
    r"integrat|migrat|replace|implement|automat|require|need|looking for|quote|quotation|"
    r"proposal|demo|trial)",
    re.IGNORECASE,
)
_VAGUE = re.compile(
    r"(just looking|not sure|maybe|some info|more info|any info|general information|browsing|"
    r"no idea|whatever|\?\?)",
    re.IGNORECASE,
)


def _filled(value):
    if isinstance(value, (int, float)):
        return value > 0
    return bool(value and str(value).strip())


def completeness(lead):
    """Score 0-100 of how complete the lead's data is.

    :param dict lead: contact_name, company, email, phone, description, address,
        expected_revenue
    """
    score = 0
    present, missing, critical_missing = [], [], []
    for key, label, points, critical in COMPLETENESS_FIELDS:
        value = lead.get(key)
        ok = _filled(value)
        if key == "email" and ok:
            ok = bool(EMAIL_RE.match(str(value).strip()))
        if ok:
            score += points
            present.append(label)
        else:
            missing.append(label)
            if critical:
                critical_missing.append(label)
    if not missing:
        analysis = "All key information is present."
    else:
        analysis = "Missing: %s." % ", ".join(missing)
        if critical_missing:
            analysis += " Critical: %s." % ", ".join(critical_missing)
    return {
        "score": float(score),
        "analysis": analysis,
        "present": present,
        "missing": missing,
        "critical_missing": critical_missing,
    }


def clarity(description):
    """Score 0-100 of how clear the need is, from the description alone."""
    text = (description or "").strip()
    if not text:
        return {
            "score": 0.0,
            "analysis": "Requirements are unclear: the lead has no description.",
            "signals": {"budget": False, "timeline": False, "decision_maker": False, "need": False},
        }
    words = len(text.split())
    signals = {
        "budget": bool(_BUDGET.search(text)),
        "timeline": bool(_TIMELINE.search(text)),
        "decision_maker": bool(_DECISION.search(text)),
        "need": bool(_NEED.search(text)),
    }
    score = min(words, 60) / 60.0 * 30.0
    score += 20 * signals["budget"] + 20 * signals["timeline"]
    score += 15 * signals["decision_maker"] + 15 * signals["need"]
    vague = bool(_VAGUE.search(text))
    if vague:
        score -= 15
    score = max(0.0, min(100.0, score))
    labels = {
        "budget": "budget",
        "timeline": "timeline",
        "decision_maker": "decision maker",
        "need": "specific need",
    }
    found = [labels[k] for k, v in signals.items() if v]
    lacking = [labels[k] for k, v in signals.items() if not v]
    if score >= 70:
        head = "Requirements are clear"
    elif score >= 40:
        head = "Requirements are partly clear"
    else:
        head = "Requirements are vague"
    parts = [head]
    if found:
        parts.append("states %s" % ", ".join(found))
    if lacking:
        parts.append("no %s" % ", ".join(lacking))
    analysis = "; ".join(parts) + "."
    if vague:
        analysis += " The wording is vague."
    return {"score": round(score, 1), "analysis": analysis, "signals": signals}


def engagement(
    activities_done=0, activities_planned=0, messages_in=0, messages_out=0, days_since_contact=None
):
    """Score 0-100 of how engaged the lead is, from activities and messages."""
    score = min(activities_done * 10, 30)
    score += min(activities_planned * 10, 20)
    score += min(messages_in * 10, 25)
    score += min(messages_out * 5, 15)
    if days_since_contact is not None:
        if days_since_contact <= 7:
            score += 10
        elif days_since_contact <= 30:
            score += 5
    score = float(min(score, 100))
    total = activities_done + activities_planned + messages_in + messages_out
    if not total:
        analysis = "No activity and no message yet."
    else:
        analysis = "%s activities done, %s planned, %s messages in, %s out" % (
            activities_done,
            activities_planned,
            messages_in,
            messages_out,
        )
        if days_since_contact is not None:
            analysis += "; last contact %s days ago" % days_since_contact
        analysis += "."
    return {
        "score": score,
        "analysis": analysis,
        "activity_count": activities_done + activities_planned,
        "message_count": messages_in + messages_out,
    }


def weighted_score(components, weights):
    """Weighted average of component scores; weights are percentages summing to 100."""
    total_weight = sum(weights.values()) or 1
    value = sum(components[k] * weights.get(k, 0) for k in components) / total_weight
    return round(max(0.0, min(100.0, value)), 1)


def band(score):
    """'high' >= 70, 'medium' 40-69, 'low' < 40."""
    if score >= 70:
        return "high"
    if score >= 40:
        return "medium"
    return "low"
