"""Settings moved from global ir.config_parameter values to fields of each company; provider
prices per million tokens replace the cost per 1k tokens; usage comes from the AI call log."""

from odoo import SUPERUSER_ID, api

PREFIX = "llm_lead_scoring."
BOOLEANS = (
    "auto_enrich_enabled",
    "auto_enrich_new_leads",
    "auto_enrich_on_update",
    "enable_customer_research",
    "exclude_personal_data",
)
INTEGERS = (
    "weight_completeness",
    "weight_clarity",
    "weight_engagement",
    "batch_size",
    "max_attempts",
    "max_prompt_chars",
)


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    params = env["ir.config_parameter"].search([("key", "=like", PREFIX + "%")])
    raw = {param.key[len(PREFIX) :]: param.value for param in params}
    vals = {}
    for key in BOOLEANS:
        # a missing boolean parameter meant off, except the three set at install
        if key in raw or key.startswith("auto_enrich"):
            vals["llm_" + key] = raw.get(key, "False") not in ("False", "false", "0", "")
    for key in INTEGERS:
        try:
            vals["llm_" + key] = int(raw[key])
        except (KeyError, ValueError):
            continue
    if vals:
        env["res.company"].search([]).write(vals)
    concurrency = raw.get("concurrency")
    if concurrency and concurrency.isdigit():
        env["llm.provider"].with_context(active_test=False).search([]).write(
            {"concurrency": min(max(int(concurrency), 1), 32)}
        )
    params.unlink()
    cr.execute("""SELECT 1 FROM information_schema.columns
                   WHERE table_name = 'llm_provider' AND column_name = 'cost_per_1k_tokens'""")
    if cr.fetchone():
        cr.execute("""UPDATE llm_provider SET price_input = cost_per_1k_tokens * 1000,
                                              price_output = cost_per_1k_tokens * 1000
                       WHERE COALESCE(cost_per_1k_tokens, 0) > 0""")
        cr.execute("ALTER TABLE llm_provider DROP COLUMN cost_per_1k_tokens")
