"""Risk and next action moved from crm_lead to crm_sales_agent_lead_state."""

COLUMNS = [
    "risk_date",
    "risk_level",
    "risk_reasons",
    "tone",
    "tone_message_id",
    "next_action",
    "next_action_reason",
    "next_action_date",
    "next_action_type_id",
]


def migrate(cr, version):
    cr.execute("""SELECT 1 FROM information_schema.columns
                   WHERE table_name = 'crm_lead' AND column_name = 'sales_agent_risk_level'""")
    if not cr.fetchone():
        return
    cr.execute(
        """INSERT INTO crm_sales_agent_lead_state
                   (lead_id, %s, create_uid, write_uid, create_date, write_date)
            SELECT id, %s, write_uid, write_uid, NOW() AT TIME ZONE 'UTC',
                   NOW() AT TIME ZONE 'UTC'
              FROM crm_lead
             WHERE sales_agent_risk_level IS NOT NULL OR sales_agent_next_action IS NOT NULL
       ON CONFLICT (lead_id) DO NOTHING"""
        % (", ".join(COLUMNS), ", ".join("sales_agent_" + col for col in COLUMNS))
    )
    # the old columns (and the index of the risk level) would only slow crm_lead writes down
    cr.execute(
        "ALTER TABLE crm_lead %s"
        % ", ".join("DROP COLUMN IF EXISTS sales_agent_" + col for col in COLUMNS)
    )
