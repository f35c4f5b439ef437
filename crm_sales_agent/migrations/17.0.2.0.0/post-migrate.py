"""The settings moved from ir.config_parameter (crm_sales_agent.<key>, global) to fields of
res.company (sales_agent_<key>, per company): every company starts from the old values."""

import logging

from odoo import SUPERUSER_ID, api
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)

PARAM_PREFIX = "crm_sales_agent."


def _parse(env, field, raw):
    """The value of ``field`` stored as the string ``raw``; None when it cannot be used."""
    if field.type == "boolean":
        return raw.strip().lower() not in ("false", "0", "")
    try:
        if field.type == "integer":
            return int(raw)
        if field.type == "float":
            return float(raw)
        if field.type == "many2one":
            return env[field.comodel_name].browse(int(raw)).exists().id or False
    except ValueError:
        return None
    return None


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    Company = env["res.company"].sudo()
    # the parameters of the former settings only (in LIKE, "_" matches any character)
    params = (
        env["ir.config_parameter"]
        .sudo()
        .search([("key", "=like", PARAM_PREFIX + "%")])
        .filtered(
            lambda p: p.key.startswith(PARAM_PREFIX)
            and "sales_agent_" + p.key[len(PARAM_PREFIX) :] in Company._fields
        )
    )
    if not params:
        return
    companies = Company.with_context(active_test=False).search([])
    for param in params:
        name = "sales_agent_" + param.key[len(PARAM_PREFIX) :]
        value = _parse(env, Company._fields[name], param.value or "")
        if value is None:
            _logger.warning("Setting %s=%r not migrated", param.key, param.value)
            continue
        try:
            # one setting at a time: a value the new range checks refuse leaves the others
            with cr.savepoint():
                companies.write({name: value})
        except ValidationError:
            _logger.warning("Setting %s=%r out of range, default kept", param.key, param.value)
    params.unlink()
