import re

from odoo import api, models

# (pattern, metric): the first that matches a question about a figure wins
KPI_PATTERNS = (
    (r"\bwin rate\b|\bwin ratio\b", "win_rate"),
    (r"\bconversion( rate)?\b|\bconvert", "conversion_rate"),
    (r"\baverage deal|\bavg deal|\bdeal size", "avg_deal_size"),
    (r"\bsales cycle|\bcycle\b|\bhow long .* to (win|close)", "avg_sales_cycle_days"),
    (r"\bweighted\b", "weighted_pipeline"),
    (r"\bpipeline\b", "pipeline_value"),
    (r"\brevenue\b|\bhow much\b.*\b(won|win|sold|sell)\b|\bturnover\b", "won_revenue"),
    (r"\b(won|win|wins|closed won)\b", "won_opportunities"),
    (r"\b(lost|lose|losses)\b", "lost_opportunities"),
    (r"\bopportunit|\bdeals?\b", "total_opportunities"),
    (r"\bleads?\b", "total_leads"),
)
BREAKDOWN_PATTERNS = (
    (r"lost reasons?|why (did )?(we|i) lose|why .* lost|lost .* by reason", "lost_reason"),
    (r"\b(by|per) source\b|\bsources\b|\bwhere .* come from", "source"),
    (r"\b(by|per) (sales ?person|salespeople|rep|seller|user)s?\b", "salesperson"),
    (r"\b(by|per) team\b|\bteams?\b.*\bcompare|\bcompare .* teams\b", "team"),
)
PERIOD_PATTERNS = (
    (r"\b(last|past|previous) (\d+) days\b", "last_n_days"),
    (r"\btoday\b", "today"),
    (r"\b(this|current) week\b", "this_week"),
    (r"\b(last|previous) week\b", "last_week"),
    (r"\b(this|current) month\b", "this_month"),
    (r"\b(last|previous) month\b", "last_month"),
    (r"\b(this|current) quarter\b", "this_quarter"),
    (r"\b(last|previous) quarter\b", "last_quarter"),
    (r"\b(this|current) year\b|\bytd\b|\byear to date\b", "this_year"),
    (r"\b(last|previous) year\b", "last_year"),
)
MY = re.compile(r"\b(my|me|i|mine)\b")

# the question shapes answered without a model (for the help answer and the README)
SHAPES = (
    "how many leads / opportunities / deals did <team or salesperson or I> win / lose <period>",
    "revenue won, win rate, conversion rate, average deal size, sales cycle <period> <filters>",
    "pipeline value, weighted pipeline <period> <filters>",
    "pipeline by stage <period> <filters>",
    "leads by team / salesperson / source, lost reasons <period>",
    "my opportunities at risk",
    "my leads not contacted for <N> days",
    "top scored leads, leads with the highest win probability",
    "my overdue activities, open escalations",
    "summarise <lead>",
    "search <words>, which leads mention <words>",
    "draft an email / SMS / call script to <lead>",
    "schedule <activity> for <lead> [tomorrow | in N days]",
    "move <lead> to <stage>",
    "log a note on <lead>: <text>",
)


class CrmCopilot(models.AbstractModel):
    """The no-provider parser: a question in English to a plan of tool calls, or None."""

    _inherit = "crm.copilot"

    @api.model
    def _copilot_shapes(self):
        """The question shapes the parser answers (for the help answer)."""
        return SHAPES

    @api.model
    def _copilot_parse(self, question, lead_id=None):
        """``[(tool, kwargs)]`` answering ``question``, or None when no shape matches.

        Team, salesperson, stage and lead names are matched against the records the user can
        read (by the tools); periods: today, this/last week, month, quarter, year, last N days.
        """
        raw = " ".join((question or "").split()).strip(" ?!.")
        q = raw.lower()
        if not q:
            return None
        for parse in (
            self._parse_action,
            self._parse_list,
            self._parse_breakdown,
            self._parse_kpi,
        ):
            plan = parse(q, raw, lead_id)
            if plan:
                return plan
        return None

    @api.model
    def _parse_lead_ref(self, text, lead_id):
        text = (text or "").strip(" '\"")
        if lead_id and (not text or text in ("this lead", "this deal", "this opportunity", "it")):
            return lead_id
        return text

    @api.model
    def _parse_action(self, q, raw, lead_id):
        """Summaries, search, drafting and proposals: the rest of the question is a name."""
        match = re.match(r"^(?:summari[sz]e|summary of|tell me about|brief me on)\s*(.*)$", q)
        if match:
            ref = self._parse_lead_ref(raw[len(raw) - len(match.group(1)) :], lead_id)
            return [("lead_summary", {"lead": ref})] if ref else None
        match = re.match(
            r"^(?:search(?: for)?|find|look for|which (?:leads|deals|messages) mention)\s+(.+)$", q
        )
        if match:
            return [("search_crm", {"query": raw[len(raw) - len(match.group(1)) :]})]
        match = re.match(
            r"^(?:draft|write|prepare)\s+(?:an?\s+)?(?:follow-up\s+)?"
            r"(email|e-mail|sms|text|call script|message|follow-up)\s*(?:(?:to|for)\s+(.*))?$",
            q,
        )
        if match:
            kind = {"sms": "sms", "text": "sms", "call script": "call_script"}.get(
                match.group(1), "email"
            )
            ref = self._parse_lead_ref(raw[match.start(2) :] if match.group(2) else "", lead_id)
            return [("draft_message", {"lead": ref, "kind": kind})] if ref else None
        match = re.match(
            r"^(?:schedule|plan)\s+(?:an?\s+)?(.+?)\s+(?:for|on|with)\s+(.+?)"
            r"(?:\s+(tomorrow|today|in (\d+) days?))?$",
            q,
        )
        if match:
            days = {"today": 0, "tomorrow": 1}.get(match.group(3) or "tomorrow")
            if match.group(4):
                days = int(match.group(4))
            ref = self._parse_lead_ref(raw[match.start(2) : match.end(2)], lead_id)
            summary = raw[match.start(1) : match.end(1)]
            return [("propose_activity", {"lead": ref, "summary": summary, "days": days})]
        match = re.match(r"^(?:move|set)\s+(.+?)\s+to\s+(?:the\s+)?(.+?)(?:\s+stage)?$", q)
        if match:
            ref = self._parse_lead_ref(raw[match.start(1) : match.end(1)], lead_id)
            stage = raw[match.start(2) : match.end(2)]
            return [("propose_stage", {"lead": ref, "stage": stage})]
        match = re.match(r"^(?:log|add|post)\s+(?:a\s+)?note\s+(?:on|to)\s+(.+?)\s*:\s*(.+)$", q)
        if match:
            ref = self._parse_lead_ref(raw[match.start(1) : match.end(1)], lead_id)
            return [("propose_note", {"lead": ref, "note": raw[match.start(2) :]})]
        return None

    @api.model
    def _parse_list(self, q, raw, lead_id):
        match = re.search(r"(?:not|never|no|without)\s+(?:been\s+)?contact\w*.*?(\d+)\s+days?", q)
        if match:
            return [("list_not_contacted", {"days": int(match.group(1))})]
        if re.search(r"\bat risk\b|\bat-risk\b|\brisky\b", q):
            return [("list_at_risk", {})]
        if re.search(r"\bwin probability\b|\blikely to win\b|\bmost likely\b", q):
            return [("list_top_scored", {"by": "win_probability"})]
        if re.search(r"\b(top|best|highest|hottest)\b.*\b(score|scored|quality|leads)\b", q):
            return [("list_top_scored", {"by": "quality"})]
        if re.search(r"\boverdue\b|\blate activit", q):
            return [("list_overdue_activities", {})]
        if re.search(r"\bescalat", q):
            return [("list_escalations", {})]
        return None

    @api.model
    def _parse_filters(self, q):
        """``{"period", "days", "team", "salesperson"}`` found in the question."""
        filters = {}
        # words that contain a team's usual name without naming a team
        q = re.sub(r"\bsales ?(cycle|person|people|rep)s?\b", " ", q)
        for pattern, period in PERIOD_PATTERNS:
            match = re.search(pattern, q)
            if match:
                filters["period"] = period
                if period == "last_n_days":
                    filters["days"] = int(match.group(2))
                break
        if MY.search(q):
            filters["salesperson"] = "me"
        else:
            users = self.env["res.users"].search([("share", "=", False)], limit=500)
            for user in sorted(users, key=lambda u: -len(u.name or "")):
                name = (user.name or "").lower()
                first = name.split(" ")[0]
                for words in (name, first if len(first) > 2 else None):
                    if words and re.search(r"\b%s\b" % re.escape(words), q):
                        filters["salesperson"] = user.name
                        q = q.replace(words, " ")  # "Orteil Sales" names no team
                        break
                if "salesperson" in filters:
                    break
        teams = self.env["crm.team"].search([])
        for team in sorted(teams, key=lambda t: -len(t.name)):
            if re.search(r"\b%s\b" % re.escape(team.name.lower()), q):
                filters["team"] = team.name
                break
        return filters

    @api.model
    def _parse_breakdown(self, q, raw, lead_id):
        if re.search(r"\bby stage\b|\bper stage\b|\bstages?\b.*\bpipeline\b", q):
            return [("pipeline_by_stage", self._parse_filters(q))]
        for pattern, by in BREAKDOWN_PATTERNS:
            if re.search(pattern, q):
                return [("breakdown", dict(self._parse_filters(q), by=by))]
        return None

    @api.model
    def _parse_kpi(self, q, raw, lead_id):
        if not re.search(
            r"\b(how many|how much|number of|count|what|what's|whats|show|total|give)\b", q
        ) and not re.search(r"\b(rate|pipeline|revenue|size|cycle)\b", q):
            return None
        for pattern, metric in KPI_PATTERNS:
            if re.search(pattern, q):
                return [("kpi", dict(self._parse_filters(q), metric=metric))]
        return None
