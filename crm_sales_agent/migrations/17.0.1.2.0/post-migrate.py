"""The follow-up bookkeeping moved from crm_lead to crm_sales_agent_lead_state."""


def migrate(cr, version):
    cr.execute("""SELECT 1 FROM information_schema.columns
                   WHERE table_name = 'crm_lead' AND column_name = 'sales_agent_followup_date'""")
    if not cr.fetchone():
        return
    cr.execute("""INSERT INTO crm_sales_agent_lead_state
                          (lead_id, welcome_done, stage_done_id, followup_date,
                           create_uid, write_uid, create_date, write_date)
                   SELECT id, sales_agent_welcome_done, sales_agent_stage_done_id,
                          sales_agent_followup_date, write_uid, write_uid,
                          NOW() AT TIME ZONE 'UTC', NOW() AT TIME ZONE 'UTC'
                     FROM crm_lead
                    WHERE sales_agent_welcome_done OR sales_agent_stage_done_id IS NOT NULL
                          OR sales_agent_followup_date IS NOT NULL
              ON CONFLICT (lead_id) DO UPDATE SET welcome_done = EXCLUDED.welcome_done,
                          stage_done_id = EXCLUDED.stage_done_id,
                          followup_date = EXCLUDED.followup_date""")
    # the old columns would only slow crm_lead writes down
    cr.execute("""ALTER TABLE crm_lead DROP COLUMN IF EXISTS sales_agent_welcome_done,
                                       DROP COLUMN IF EXISTS sales_agent_stage_done_id,
                                       DROP COLUMN IF EXISTS sales_agent_followup_date""")
