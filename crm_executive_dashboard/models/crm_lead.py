from odoo import models, tools
from odoo.tools import SQL

# the columns of crm_lead the dashboard's main query reads: with them in an index, it reads the
# index alone (index-only scans) instead of the wide lead rows. No AI column: the scoring
# rewrites them on every lead, and a write to an indexed column is a non-HOT update of all of
# crm_lead's indexes; the dashboard reads them from its own narrow table (AI_TABLE)
DASHBOARD_COLUMNS = (
    "id",
    "date_closed",
    "company_id",
    "team_id",
    "user_id",
    "stage_id",
    "active",
    "type",
    "probability",
    "expected_revenue",
    "date_last_stage_update",
    # the analyses' segments (funnel, win/loss, ROI): set once, rarely written
    "source_id",
    "medium_id",
    "campaign_id",
    "country_id",
    "lost_reason_id",
)

# the narrow copy of the AI columns of the scored leads, kept by triggers on crm_lead (any
# write, ORM or SQL, of llm_lead_scoring or anyone else): (table column, crm_lead column). With
# the lead's creation and closing dates, so that the dashboard matches the leads created in a
# period with their AI row in the order of both indexes (merge join), and finds the scored
# leads closed in a period in the narrow table
AI_TABLE = "crm_lead_ai_dashboard"
AI_COLUMNS = (
    ("scored_at", "ai_last_enrichment_date"),
    ("score", "ai_probability_score"),
    ("completeness", "ai_completeness_score"),
    ("clarity", "ai_clarity_score"),
    ("engagement", "ai_engagement_score"),
    ("status", "ai_enrichment_status"),
    ("lead_create_date", "create_date"),
    ("lead_date_closed", "date_closed"),
)
AI_COLUMN_TYPES = {
    "scored_at": "timestamp",
    "score": "float8",
    "completeness": "float8",
    "clarity": "float8",
    "engagement": "float8",
    "status": "varchar",
    "lead_create_date": "timestamp",
    "lead_date_closed": "timestamp",
}
# the AI table's indexes: (name, key, included columns, condition)
AI_INDEXES = (
    # the top AI-scored leads: read in the order of this index, the first ones are found
    # without sorting the scored leads
    (
        "crm_lead_ai_dashboard_score_idx",
        ("score DESC", "lead_id DESC"),
        (),
        "scored_at IS NOT NULL AND score IS NOT NULL",
    ),
    # in the order of crm_lead_dashboard_idx (creation date, id), with the AI figures
    (
        "crm_lead_ai_dashboard_created_idx",
        ("lead_create_date", "lead_id"),
        ("scored_at", "score", "completeness", "clarity", "engagement", "status"),
        None,
    ),
    # the scored leads by closing date, for the won rate by score band
    (
        "crm_lead_ai_dashboard_closed_idx",
        ("lead_date_closed",),
        ("lead_create_date", "lead_id", "score"),
        "lead_date_closed IS NOT NULL AND scored_at IS NOT NULL",
    ),
)
AI_TRIGGER_FUNCTION = "crm_lead_ai_dashboard_sync"
AI_TRIGGERS = ("crm_lead_ai_dashboard_insert", "crm_lead_ai_dashboard_update")
# indexes of an earlier version, dropped on update
OBSOLETE_INDEXES = (
    "crm_lead_date_deadline_open_dashboard_idx",
    "crm_lead_counted_dashboard_idx",
    "crm_lead_ai_top_dashboard_idx",
)

FORECAST_COLUMNS = (
    "type",
    "stage_id",
    "company_id",
    "team_id",
    "user_id",
    "create_date",
    "probability",
    "expected_revenue",
)


class CrmLead(models.Model):
    _inherit = "crm.lead"

    def _auto_init(self):
        res = super()._auto_init()
        self._init_dashboard_indexes()
        self._init_ai_table()
        return res

    def _init_dashboard_indexes(self):
        """The dashboard's indexes on crm_lead, created or rebuilt when their definition
        changed."""
        # the leads closed in a period, with what the dashboard reads of them (index-only):
        # the main query and the AI query read the leads closed in the period but created
        # before it from here, instead of the whole covering index by creation date
        self._dashboard_covering_index(
            "crm_lead_date_closed_dashboard_idx",
            ("date_closed",),
            ("create_date",) + tuple(c for c in DASHBOARD_COLUMNS if c != "date_closed"),
            SQL("WHERE date_closed IS NOT NULL"),
        )
        for name in OBSOLETE_INDEXES:
            self._cr.execute(SQL("DROP INDEX IF EXISTS %s", SQL.identifier(name)))
        # the open leads by expected closing date, with what the forecast reads (index-only)
        if not tools.index_exists(self._cr, "crm_lead_forecast_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (date_deadline) INCLUDE (%s) "
                    "WHERE date_closed IS NULL AND active",
                    SQL.identifier("crm_lead_forecast_dashboard_idx"),
                    SQL.identifier(self._table),
                    SQL(", ").join(SQL.identifier(column) for column in FORECAST_COLUMNS),
                )
            )
        # the leads created in a period, with what the dashboard reads of them (index-only), in
        # the order of the AI table's index on the same keys (see _query_ai_figures)
        self._dashboard_covering_index(
            "crm_lead_dashboard_idx",
            ("create_date", "id"),
            tuple(c for c in DASHBOARD_COLUMNS if c != "id"),
        )
        # the team and salesperson of the active leads in id order, to match them with their
        # activities (merge join, see the dashboard's _query_activities)
        if not tools.index_exists(self._cr, "crm_lead_active_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (id) INCLUDE (team_id, user_id, company_id) "
                    "WHERE active",
                    SQL.identifier("crm_lead_active_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )
        # the open leads by stage and time in it, with what the Bottlenecks page filters on
        # (index-only): its "over the norm" search is one range per stage
        if not tools.index_exists(self._cr, "crm_lead_stage_open_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (stage_id, date_last_stage_update) "
                    "INCLUDE (type, company_id, team_id, user_id) "
                    "WHERE date_closed IS NULL AND active",
                    SQL.identifier("crm_lead_stage_open_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )

    def _dashboard_covering_index(self, name, keys, columns, where=None):
        """Create the index ``name`` on the columns ``keys`` including ``columns``; an index of
        an earlier version with other keys or other included columns (the AI columns, or
        fewer) is rebuilt."""
        self._cr.execute(
            SQL(
                """SELECT array_agg(a.attname::text ORDER BY k.n)
                              FILTER (WHERE k.n <= i.indnkeyatts),
                          array_agg(a.attname::text ORDER BY a.attname)
                              FILTER (WHERE k.n > i.indnkeyatts)
                     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     CROSS JOIN unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE c.relname = %s
                 GROUP BY i.indnkeyatts""",
                name,
            )
        )
        found = self._cr.fetchone()
        if found and found == (list(keys), sorted(columns)):
            return
        if found:
            self._cr.execute(SQL("DROP INDEX %s", SQL.identifier(name)))
        self._cr.execute(
            SQL(
                "CREATE INDEX %s ON %s (%s) INCLUDE (%s) %s",
                SQL.identifier(name),
                SQL.identifier(self._table),
                SQL(", ").join(SQL.identifier(key) for key in keys),
                SQL(", ").join(SQL.identifier(column) for column in columns),
                where or SQL(""),
            )
        )

    def _init_ai_table(self):
        """Create the narrow AI table (``AI_TABLE``, filled from the leads), its indexes and
        the triggers that keep it equal to crm_lead's AI columns and dates: a row per lead
        scored or with a scoring status, deleted with its lead. A table of an earlier version
        gets the columns it lacks, filled from the leads."""
        cr = self._cr
        columns = SQL(", ").join(SQL.identifier(column) for column, _lead in AI_COLUMNS)
        lead_columns = SQL(", ").join(SQL.identifier(lead) for _column, lead in AI_COLUMNS)
        new_values = SQL(", ").join(SQL("NEW.%s", SQL.identifier(lead)) for _c, lead in AI_COLUMNS)
        old_values = SQL(", ").join(SQL("OLD.%s", SQL.identifier(lead)) for _c, lead in AI_COLUMNS)
        has_ai = SQL("ai_last_enrichment_date IS NOT NULL OR ai_enrichment_status IS NOT NULL")
        definitions = {
            column: SQL("%s %s", SQL.identifier(column), SQL(AI_COLUMN_TYPES[column]))
            for column, _lead in AI_COLUMNS
        }
        if not tools.table_exists(cr, AI_TABLE):
            cr.execute(
                SQL(
                    "CREATE TABLE %s (lead_id integer PRIMARY KEY "
                    "REFERENCES crm_lead(id) ON DELETE CASCADE, %s)",
                    SQL.identifier(AI_TABLE),
                    SQL(", ").join(definitions.values()),
                )
            )
            cr.execute(
                SQL(
                    "INSERT INTO %s (lead_id, %s) SELECT id, %s FROM crm_lead WHERE %s",
                    SQL.identifier(AI_TABLE),
                    columns,
                    lead_columns,
                    has_ai,
                )
            )
        missing = [
            (column, lead)
            for column, lead in AI_COLUMNS
            if not tools.column_exists(cr, AI_TABLE, column)
        ]
        if missing:
            cr.execute(
                SQL(
                    "ALTER TABLE %s %s",
                    SQL.identifier(AI_TABLE),
                    SQL(", ").join(
                        SQL("ADD COLUMN %s", definitions[column]) for column, _lead in missing
                    ),
                )
            )
            cr.execute(
                SQL(
                    "UPDATE %s ai SET %s FROM crm_lead WHERE crm_lead.id = ai.lead_id",
                    SQL.identifier(AI_TABLE),
                    SQL(", ").join(
                        SQL("%s = crm_lead.%s", SQL.identifier(column), SQL.identifier(lead))
                        for column, lead in missing
                    ),
                )
            )
        for name, key, include, where in AI_INDEXES:
            if tools.index_exists(cr, name):
                continue
            cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (%s) %s %s",
                    SQL.identifier(name),
                    SQL.identifier(AI_TABLE),
                    SQL(", ").join(SQL(part) for part in key),
                    SQL(
                        "INCLUDE (%s)",
                        SQL(", ").join(SQL.identifier(column) for column in include),
                    )
                    if include
                    else SQL(""),
                    SQL("WHERE %s", SQL(where)) if where else SQL(""),
                )
            )
        cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(function)s() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                       IF NEW.ai_last_enrichment_date IS NULL
                          AND NEW.ai_enrichment_status IS NULL THEN
                           DELETE FROM %(table)s WHERE lead_id = NEW.id;
                       ELSE
                           INSERT INTO %(table)s (lead_id, %(columns)s)
                                VALUES (NEW.id, %(new)s)
                           ON CONFLICT (lead_id) DO UPDATE SET (%(columns)s) = (%(excluded)s);
                       END IF;
                       RETURN NULL;
                   END $$""",
                function=SQL.identifier(AI_TRIGGER_FUNCTION),
                table=SQL.identifier(AI_TABLE),
                columns=columns,
                new=new_values,
                excluded=SQL(", ").join(
                    SQL("EXCLUDED.%s", SQL.identifier(column)) for column, _lead in AI_COLUMNS
                ),
            )
        )
        insert, update = AI_TRIGGERS
        for name in AI_TRIGGERS:
            cr.execute(SQL("DROP TRIGGER IF EXISTS %s ON crm_lead", SQL.identifier(name)))
        cr.execute(
            SQL(
                "CREATE TRIGGER %s AFTER INSERT ON crm_lead FOR EACH ROW WHEN "
                "(NEW.ai_last_enrichment_date IS NOT NULL OR NEW.ai_enrichment_status IS NOT NULL)"
                " EXECUTE FUNCTION %s()",
                SQL.identifier(insert),
                SQL.identifier(AI_TRIGGER_FUNCTION),
            )
        )
        cr.execute(
            SQL(
                "CREATE TRIGGER %s AFTER UPDATE OF %s ON crm_lead FOR EACH ROW "
                "WHEN ((OLD.ai_last_enrichment_date IS NOT NULL OR OLD.ai_enrichment_status "
                "IS NOT NULL OR NEW.ai_last_enrichment_date IS NOT NULL OR "
                "NEW.ai_enrichment_status IS NOT NULL) AND (%s) IS DISTINCT FROM (%s)) "
                "EXECUTE FUNCTION %s()",
                SQL.identifier(update),
                lead_columns,
                old_values,
                new_values,
                SQL.identifier(AI_TRIGGER_FUNCTION),
            )
        )


class MailActivity(models.Model):
    _inherit = "mail.activity"

    def _auto_init(self):
        res = super()._auto_init()
        # the planned (not done) activities of leads in lead order, with their deadline, for
        # the dashboard's overdue counts
        self._cr.execute("DROP INDEX IF EXISTS mail_activity_lead_dashboard_idx")
        if not tools.index_exists(self._cr, "mail_activity_lead_open_dashboard_idx"):
            self._cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (res_id) INCLUDE (date_deadline) "
                    "WHERE res_model = 'crm.lead' AND active",
                    SQL.identifier("mail_activity_lead_open_dashboard_idx"),
                    SQL.identifier(self._table),
                )
            )
        return res


class MailMessage(models.Model):
    _inherit = "mail.message"

    def _auto_init(self):
        res = super()._auto_init()
        # the activities done on leads, for the dashboard (small: done activities of leads
        # only): by date, for short periods, and in lead order, to be matched with the leads
        # without sorting them on long ones
        for name, key, include in (
            ("mail_message_lead_activity_dashboard_idx", "date", "res_id"),
            ("mail_message_lead_activity_res_dashboard_idx", "res_id", "date"),
        ):
            if not tools.index_exists(self._cr, name):
                self._cr.execute(
                    SQL(
                        "CREATE INDEX %s ON %s (%s) INCLUDE (%s) "
                        "WHERE model = 'crm.lead' AND mail_activity_type_id IS NOT NULL",
                        SQL.identifier(name),
                        SQL.identifier(self._table),
                        SQL.identifier(key),
                        SQL.identifier(include),
                    )
                )
        return res
