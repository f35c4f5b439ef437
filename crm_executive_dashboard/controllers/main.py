import pytz

from odoo import _, http
from odoo.exceptions import AccessError, UserError
from odoo.http import content_disposition, request

# the keys of the client's ``context`` the routes apply, as Odoo's own routes do for the
# companies (checked against the user's) and the language and time zone of the user
CONTEXT_KEYS = ("allowed_company_ids", "lang", "tz")


class CrmExecutiveDashboardController(http.Controller):
    # ------------------------------------------------------------
    # HELPERS
    # ------------------------------------------------------------

    def _dashboard_env(self, context=None, allowed_company_ids=None):
        """The request's environment with the client's context (its companies, language, time
        zone), like Odoo's ``call_kw`` applies it.

        ``allowed_company_ids`` (top level, older clients) wins over the context's. Raises
        AccessError for a user without CRM access or a company the user may not see, UserError
        on a malformed context or company list.
        """
        env = request.env
        if not env["crm.lead"].check_access_rights("read", raise_exception=False):
            raise AccessError(_("You do not have access to the CRM dashboard."))
        if context is None:
            context = {}
        if not isinstance(context, dict):
            raise UserError(_("context must be an object."))
        values = {key: context[key] for key in CONTEXT_KEYS if context.get(key)}
        if allowed_company_ids:
            values["allowed_company_ids"] = allowed_company_ids
        companies = values.get("allowed_company_ids")
        if companies:
            if not isinstance(companies, list) or not all(
                isinstance(cid, int) and not isinstance(cid, bool) for cid in companies
            ):
                raise UserError(_("allowed_company_ids must be a list of company ids."))
            if not set(companies) <= set(env.user.company_ids.ids):
                raise AccessError(_("You cannot access one of the companies you asked for."))
        for key in ("lang", "tz"):
            if key in values and not isinstance(values[key], str):
                raise UserError(_("%(key)s must be a string.", key=key))
        if "tz" in values and values["tz"] not in pytz.all_timezones_set:
            raise UserError(_("Unknown time zone: %(tz)s.", tz=values["tz"]))
        return env(context=dict(env.context, **values))

    @staticmethod
    def _split_ids(value):
        """Ids from a query string ("1,2,3"); anything else is left for the model to refuse."""
        if not value:
            return []
        result = []
        for part in value.split(","):
            part = part.strip()
            result.append(int(part) if part.isdigit() else part)
        return result

    @staticmethod
    def _error(code, error):
        return {"error": {"code": code, "message": str(error)}}

    # ------------------------------------------------------------
    # ROUTES
    # ------------------------------------------------------------

    @http.route("/crm/dashboard/data", type="json", auth="user")
    def dashboard_data(
        self,
        date_from=None,
        date_to=None,
        team_ids=None,
        user_ids=None,
        allowed_company_ids=None,
        context=None,
        **kwargs,
    ):
        """Dashboard figures; bad input gives {"error": {"code", "message"}}, never a traceback."""
        if kwargs:
            return self._error(
                "bad_request",
                _("Unknown parameter(s): %(names)s.", names=", ".join(sorted(kwargs))),
            )
        try:
            env = self._dashboard_env(context, allowed_company_ids)
            dashboard = env["crm.executive.dashboard"]
            data = dashboard.get_dashboard_data(
                date_from, date_to, team_ids=team_ids, user_ids=user_ids
            )
            data["filter_options"] = dashboard.get_filter_options()
            return data
        except AccessError as error:
            return self._error("access_denied", error)
        except UserError as error:
            return self._error("bad_request", error)

    @http.route("/crm/dashboard/export", type="http", auth="user", methods=["GET"])
    def dashboard_export(
        self, date_from=None, date_to=None, team_ids=None, user_ids=None, company_ids=None, **kwargs
    ):
        """The page's workbook; ``company_ids``: the companies of the page ("1,2"). Bad input
        gives a JSON error with HTTP 400 (403 when access is denied), never a traceback."""
        try:
            env = self._dashboard_env(allowed_company_ids=self._split_ids(company_ids))
            dashboard = env["crm.executive.dashboard"]
            data = dashboard.get_dashboard_data(
                date_from,
                date_to,
                team_ids=self._split_ids(team_ids),
                user_ids=self._split_ids(user_ids),
            )
        except AccessError as error:
            return request.make_json_response(self._error("access_denied", error), status=403)
        except UserError as error:
            return request.make_json_response(self._error("bad_request", error), status=400)
        content = dashboard._export_xlsx(data)
        filename = "crm_dashboard_%s_%s.xlsx" % (
            data["period"]["date_from"],
            data["period"]["date_to"],
        )
        return self._xlsx_response(content, filename)

    # ------------------------------------------------------------
    # ANALYSES (funnel, bottlenecks, win/loss, ROI)
    # ------------------------------------------------------------

    def _analysis(self, name, date_from, date_to, team_ids, user_ids, company_ids, kwargs):
        """``(dashboard model, analysis data, None)``, or ``(None, None, error response)``:
        400 on bad input, 403 when access is denied, JSON in both cases."""
        try:
            if kwargs:
                raise UserError(
                    _("Unknown parameter(s): %(names)s.", names=", ".join(sorted(kwargs)))
                )
            env = self._dashboard_env(allowed_company_ids=self._split_ids(company_ids))
            dashboard = env["crm.executive.dashboard"]
            data = dashboard.get_analysis(
                name,
                date_from,
                date_to,
                team_ids=self._split_ids(team_ids),
                user_ids=self._split_ids(user_ids),
            )
            return dashboard, data, None
        except AccessError as error:
            return (
                None,
                None,
                request.make_json_response(self._error("access_denied", error), status=403),
            )
        except UserError as error:
            return (
                None,
                None,
                request.make_json_response(self._error("bad_request", error), status=400),
            )

    @http.route("/crm/dashboard/analysis/<string:name>", type="http", auth="user", methods=["GET"])
    def dashboard_analysis(
        self,
        name,
        date_from=None,
        date_to=None,
        team_ids=None,
        user_ids=None,
        company_ids=None,
        **kwargs,
    ):
        """One analysis page's data as JSON (``get_analysis``); ``company_ids``: the companies
        of the page ("1,2"). Bad input: HTTP 400 with {"error": {"code", "message"}}."""
        _dashboard, data, error = self._analysis(
            name, date_from, date_to, team_ids, user_ids, company_ids, kwargs
        )
        return error or request.make_json_response(data)

    @http.route(
        "/crm/dashboard/analysis/<string:name>/export", type="http", auth="user", methods=["GET"]
    )
    def dashboard_analysis_export(
        self,
        name,
        date_from=None,
        date_to=None,
        team_ids=None,
        user_ids=None,
        company_ids=None,
        **kwargs,
    ):
        """The analysis as an .xlsx workbook (same parameters and errors as the JSON route)."""
        dashboard, data, error = self._analysis(
            name, date_from, date_to, team_ids, user_ids, company_ids, kwargs
        )
        if error:
            return error
        content = dashboard._export_analysis_xlsx(data)
        filename = "crm_%s_%s_%s.xlsx" % (
            name,
            data["period"]["date_from"],
            data["period"]["date_to"],
        )
        return self._xlsx_response(content, filename)

    def _xlsx_response(self, content, filename):
        """An .xlsx download, as both export routes send it."""
        return request.make_response(
            content,
            headers=[
                (
                    "Content-Type",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                ("Content-Disposition", content_disposition(filename)),
                ("Content-Length", len(content)),
            ],
        )
