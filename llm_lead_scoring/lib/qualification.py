"""The BANT qualification scorecard in plain Python: rules on the lead's texts, the checks of
the LLM's proposal, and the qualification status.

Each item (budget, authority, need, timeline) is ``unknown``, ``partly`` or ``confirmed``,
with the sentence it was taken from (its evidence). The rules read the description and the
inbound messages, sentence by sentence:

- budget: *confirmed* when a sentence has a budget word (budget, funds, allocated, approved
  spend, ...) and an amount (a number with a currency sign, code or k/M suffix); *partly*
  with only one of the two;
- authority: *confirmed* when a sentence says who decides (decision maker, decide, sign off,
  final say, approve the purchase, ...); *partly* when it only names a role (CEO, CFO,
  owner, director, head of, VP, procurement, board, ...);
- need: *confirmed* when a need phrase (we need, looking for, require, want to replace, ...)
  comes with a figure (a quantity: "50 users"); *partly* with the phrase alone;
- timeline: *confirmed* when a sentence has a date, a quarter (Q3), a month or year, or a
  delay ("within two weeks", "by June"); *partly* with vague words only (soon, asap, urgent,
  this year, next year).
"""

import re

ITEMS = ("budget", "authority", "need", "timeline")
STATES = ("unknown", "partly", "confirmed")
POINTS = {"unknown": 0, "partly": 1, "confirmed": 2}
QUALIFIED_POINTS = 7  # of 8: every item confirmed, or one of them only partly
UNQUALIFIED_POINTS = 2  # at most: nothing or almost nothing known
MAX_EVIDENCE = 300

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_AMOUNT = re.compile(
    r"(?:[$€£¥]\s?\d[\d\s,.']*\d*\s?[kKmM]?\b)"
    r"|(?:\b\d[\d\s,.']*\s?(?:[kKmM]\b|k€|eur|euros?|usd|dollars?|gbp|chf|€|\$|£))",
    re.IGNORECASE,
)
_BUDGET = re.compile(
    r"\b(budget\w*|funds?|funding|allocated|spend|price range|afford)\b", re.IGNORECASE
)
_DECIDES = re.compile(
    r"\b(decision[- ]?makers?|decides?|deciding|sign(?:s|ed)?[- ]off|signs? the (?:contract|"
    r"order|purchase)|final say|approves? the (?:purchase|budget|order)|authori[sz]ed? to"
    r"|my call|our call)\b",
    re.IGNORECASE,
)
_ROLE = re.compile(
    r"\b(ceo|cfo|cto|coo|cio|owner|founder|director|head of|vp|vice[- ]president|president|"
    r"procurement|purchasing|board|managing partner|general manager)\b",
    re.IGNORECASE,
)
_NEED = re.compile(
    r"\b(we need|i need|needs?|looking for|require[sd]?|requirements?|want to (?:replace|buy|"
    r"move|switch|implement)|interested in|must have|searching for)\b",
    re.IGNORECASE,
)
_FIGURE = re.compile(r"\b\d+\b")
_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_TIMELINE = re.compile(
    r"\b(q[1-4]|h[12]|20\d\d|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}|"
    r"(?:by|before|in|until|end of|from)\s+(?:" + _MONTHS + r")|"
    r"within\s+(?:\w+\s+)?(?:days?|weeks?|months?)|next\s+(?:week|month|quarter)|"
    r"(?:this|next) (?:fiscal )?quarter|deadline|go[- ]live)\b",
    re.IGNORECASE,
)
_VAGUE_TIME = re.compile(
    r"\b(soon|asap|as soon as possible|urgent\w*|this year|next year|later|shortly|quickly)\b",
    re.IGNORECASE,
)


def sentences(text):
    """The sentences of a text (cut at . ! ? and line ends), stripped, in order."""
    return [s.strip() for s in _SENTENCE.findall(text or "") if len(s.strip()) > 2]


def _rule(item, sentence):
    """The state one sentence gives an item ('unknown' when it says nothing)."""
    if item == "budget":
        word, amount = bool(_BUDGET.search(sentence)), bool(_AMOUNT.search(sentence))
        return "confirmed" if word and amount else ("partly" if word or amount else "unknown")
    if item == "authority":
        if _DECIDES.search(sentence):
            return "confirmed"
        return "partly" if _ROLE.search(sentence) else "unknown"
    if item == "need":
        if not _NEED.search(sentence):
            return "unknown"
        return "confirmed" if _FIGURE.search(sentence) else "partly"
    if _TIMELINE.search(sentence):
        return "confirmed"
    return "partly" if _VAGUE_TIME.search(sentence) else "unknown"


def from_rules(texts):
    """{item: (state, evidence)} from the lead's texts (description, inbound messages): for
    each item the strongest sentence, the first one among equals."""
    result = {item: ("unknown", False) for item in ITEMS}
    for text in texts:
        for sentence in sentences(text):
            for item in ITEMS:
                state = _rule(item, sentence)
                if POINTS[state] > POINTS[result[item][0]]:
                    result[item] = (state, sentence[:MAX_EVIDENCE])
    return result


def normalize(text):
    """Case and spacing left out, for comparing a quoted sentence with the source text."""
    return " ".join((text or "").casefold().split())


def check_llm(proposal, texts):
    """The LLM's items that hold: a known state and, unless unknown, an evidence sentence that
    really occurs in the texts sent (quotes and final punctuation aside). The others are
    dropped (the rules decide for them). :return: {item: (state, evidence)}"""
    haystack = normalize(" \n ".join(t for t in texts if t))
    kept = {}
    for item, answer in (proposal or {}).items():
        if item not in ITEMS or not isinstance(answer, dict):
            continue
        state, evidence = answer.get("status"), answer.get("evidence")
        if state not in STATES:
            continue
        if state == "unknown":
            kept[item] = ("unknown", False)
            continue
        quote = normalize(evidence if isinstance(evidence, str) else "").strip(" \"'“”.")
        if len(quote) < 3 or quote not in haystack:
            continue
        kept[item] = (state, evidence.strip()[:MAX_EVIDENCE])
    return kept


def status(states):
    """unqualified / partly / qualified from the four states (see POINTS and the limits)."""
    points = sum(POINTS.get(s or "unknown", 0) for s in states)
    if points >= QUALIFIED_POINTS:
        return "qualified"
    if points <= UNQUALIFIED_POINTS:
        return "unqualified"
    return "partly"
