from odoo import _, api, fields, models, tools
from odoo.exceptions import UserError
from odoo.tools import SQL

# the creation date of each row's lead, a column kept by triggers (any write, ORM or SQL: a row
# written or moved to another lead by a merge, a lead's creation date written in SQL by an
# import), not an ORM field: the funnel matches the leads created in a period with their rows
# in the order of both indexes, (creation date, lead) here and in crm_lead_dashboard_idx
LEAD_CREATE_DATE = "lead_create_date"
HISTORY_FUNCTION = "crm_lead_stage_history_set_lead_create_date"
HISTORY_TRIGGER = "crm_lead_stage_history_lead_create_date"
HISTORY_MOVE_TRIGGER = "crm_lead_stage_history_lead_moved"
LEAD_FUNCTION = "crm_lead_stage_history_follow_create_date"
LEAD_TRIGGER = "crm_lead_stage_history_create_date"
# a lead's history follows its messages when crm's merge moves them to the lead kept: done by
# the database in crm's own UPDATE of the messages (no query per merge: crm's tests count them)
MESSAGE_FUNCTION = "crm_lead_stage_history_follow_messages"
MESSAGE_TRIGGER = "crm_lead_stage_history_messages_moved"
# give(head, tails): the one way a lead gets the history of others (trigger and _merge_into)
GIVE_FUNCTION = "crm_lead_stage_history_give"
HISTORY_COLUMNS = ("date_to", "stage_id", "next_stage_id", "date_from")


class CrmLeadStageHistory(models.Model):
    """The stage history of the leads, one row per change of stage: the stay in the stage the
    lead left (from ``date_from``, empty for "since the lead's creation", to ``date_to``) and the
    stage it entered. Kept by ``crm.lead.write`` and merges, filled once at install from the
    chatter's tracking of ``stage_id``; the dashboard's analyses read it instead of joining
    ``mail_message`` and ``mail_tracking_value``. The stay in the current stage is the lead's
    own ``stage_id`` (not a row). Each row also carries its lead's creation date (column
    ``LEAD_CREATE_DATE``, kept by triggers) for the funnel."""

    _name = "crm.lead.stage.history"
    _description = "Lead Stage History"
    _order = "lead_id, date_to, id"
    _rec_name = "stage_id"
    _log_access = False

    lead_id = fields.Many2one("crm.lead", string="Lead", required=True, ondelete="cascade")
    stage_id = fields.Many2one(
        "crm.stage", string="Stage Left", ondelete="set null", help="The stage the lead left."
    )
    next_stage_id = fields.Many2one(
        "crm.stage", string="Stage Entered", ondelete="set null", help="The stage it moved to."
    )
    date_from = fields.Datetime(
        "Entered", help="When the lead entered the stage it left; empty: at its creation."
    )
    date_to = fields.Datetime("Left", required=True, help="When the lead changed stage.")

    def _auto_init(self):
        created = not tools.table_exists(self._cr, self._table)
        res = super()._auto_init()
        # a lead's changes in order (the analyses join the leads of a period with their rows:
        # index-only with what they read)
        tools.create_index(
            self._cr,
            "crm_lead_stage_history_lead_idx",
            self._table,
            ["lead_id", *HISTORY_COLUMNS],
        )
        self._init_lead_create_date()
        self._init_merge_trigger()
        if created:
            self._fill_from_tracking()
        return res

    def _init_lead_create_date(self):
        """The column ``LEAD_CREATE_DATE`` (filled from the leads when a table of an earlier
        version lacks it), its index in the order of crm_lead_dashboard_idx with what the
        funnel reads (index-only), and the triggers that keep it equal to the lead's
        creation date."""
        cr = self._cr
        table, column = SQL.identifier(self._table), SQL.identifier(LEAD_CREATE_DATE)
        if not tools.column_exists(cr, self._table, LEAD_CREATE_DATE):
            cr.execute(SQL("ALTER TABLE %s ADD COLUMN %s timestamp", table, column))
            cr.execute(
                SQL(
                    "UPDATE %s h SET %s = l.create_date FROM crm_lead l WHERE l.id = h.lead_id",
                    table,
                    column,
                )
            )
        if not tools.index_exists(cr, "crm_lead_stage_history_created_idx"):
            cr.execute(
                SQL(
                    "CREATE INDEX %s ON %s (%s, lead_id) INCLUDE (%s)",
                    SQL.identifier("crm_lead_stage_history_created_idx"),
                    table,
                    column,
                    SQL(", ").join(SQL.identifier(name) for name in HISTORY_COLUMNS),
                )
            )
        cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(history_function)s() RETURNS trigger
                   LANGUAGE plpgsql AS $$
                   BEGIN
                       NEW.%(column)s := (SELECT create_date FROM crm_lead WHERE id = NEW.lead_id);
                       RETURN NEW;
                   END $$;
                   CREATE OR REPLACE FUNCTION %(lead_function)s() RETURNS trigger
                   LANGUAGE plpgsql AS $$
                   BEGIN
                       UPDATE %(table)s SET %(column)s = NEW.create_date WHERE lead_id = NEW.id;
                       RETURN NULL;
                   END $$;
                   DROP TRIGGER IF EXISTS %(history_trigger)s ON %(table)s;
                   CREATE TRIGGER %(history_trigger)s BEFORE INSERT ON %(table)s FOR EACH ROW
                       WHEN (NEW.%(column)s IS NULL) EXECUTE FUNCTION %(history_function)s();
                   DROP TRIGGER IF EXISTS %(history_move_trigger)s ON %(table)s;
                   CREATE TRIGGER %(history_move_trigger)s BEFORE UPDATE OF lead_id ON %(table)s
                       FOR EACH ROW WHEN (OLD.lead_id IS DISTINCT FROM NEW.lead_id)
                       EXECUTE FUNCTION %(history_function)s();
                   DROP TRIGGER IF EXISTS %(lead_trigger)s ON crm_lead;
                   CREATE TRIGGER %(lead_trigger)s AFTER UPDATE OF create_date ON crm_lead
                       FOR EACH ROW WHEN (OLD.create_date IS DISTINCT FROM NEW.create_date)
                       EXECUTE FUNCTION %(lead_function)s()""",
                table=table,
                column=column,
                history_function=SQL.identifier(HISTORY_FUNCTION),
                history_trigger=SQL.identifier(HISTORY_TRIGGER),
                history_move_trigger=SQL.identifier(HISTORY_MOVE_TRIGGER),
                lead_function=SQL.identifier(LEAD_FUNCTION),
                lead_trigger=SQL.identifier(LEAD_TRIGGER),
            )
        )

    def _init_merge_trigger(self):
        """``GIVE_FUNCTION``: give ``head`` the history of ``tails``, chain the stays of
        ``head`` again in date order (each begins at the change before it, or at the creation
        of ``head``, as the merged tracking values read) and forget the norms learned today;
        and the trigger that calls it when crm's merge has moved all the messages of a merged
        lead (``message_ids``: all but user notifications) to the lead kept (``_merge_into``
        calls it for merged leads without messages)."""
        self._cr.execute(
            SQL(
                """CREATE OR REPLACE FUNCTION %(give)s(head integer, tails integer[])
                   RETURNS void LANGUAGE plpgsql AS $$
                   DECLARE moved integer;
                   BEGIN
                       UPDATE %(table)s SET lead_id = head WHERE lead_id = ANY(tails);
                       GET DIAGNOSTICS moved = ROW_COUNT;
                       IF moved > 0 THEN
                           UPDATE %(table)s h SET date_from = c.previous
                             FROM (SELECT id, LAG(date_to) OVER (ORDER BY date_to, id) AS previous
                                     FROM %(table)s WHERE lead_id = head) c
                            WHERE h.id = c.id AND h.date_from IS DISTINCT FROM c.previous;
                           DELETE FROM %(norms)s;
                       END IF;
                   END $$;
                   CREATE OR REPLACE FUNCTION %(function)s() RETURNS trigger
                   LANGUAGE plpgsql AS $$
                   BEGIN
                       -- crm's merge moves every message of a merged lead: one message moved
                       -- alone (its author may, over RPC) leaves the history where it is
                       IF NOT EXISTS (SELECT 1 FROM mail_message
                                       WHERE model = 'crm.lead' AND res_id = OLD.res_id
                                         AND message_type != 'user_notification') THEN
                           PERFORM %(give)s(NEW.res_id, ARRAY[OLD.res_id]);
                       END IF;
                       RETURN NULL;
                   END $$;
                   DROP TRIGGER IF EXISTS %(trigger)s ON mail_message;
                   CREATE TRIGGER %(trigger)s AFTER UPDATE OF res_id ON mail_message
                       FOR EACH ROW WHEN (OLD.model = 'crm.lead' AND NEW.model = 'crm.lead'
                                          AND NEW.res_id IS NOT NULL
                                          AND OLD.res_id IS DISTINCT FROM NEW.res_id)
                       EXECUTE FUNCTION %(function)s()""",
                give=SQL.identifier(GIVE_FUNCTION),
                function=SQL.identifier(MESSAGE_FUNCTION),
                trigger=SQL.identifier(MESSAGE_TRIGGER),
                table=SQL.identifier(self._table),
                norms=SQL.identifier(self.env["crm.executive.dashboard.norm"]._table),
            )
        )

    # ------------------------------------------------------------
    # BUSINESS
    # ------------------------------------------------------------

    @api.model
    def _fill_from_tracking(self, lead_ids=None):
        """(Re)build the history of ``lead_ids`` (all leads: None) from the chatter's tracking
        values of ``crm.lead.stage_id``, in one statement: each tracking value ends a stay that
        began at the lead's previous change of stage (or its creation). Stages deleted since
        are left empty. Returns the number of rows written."""
        self.flush_model()
        where = SQL("TRUE") if lead_ids is None else SQL("lead_id = ANY(%s)", list(lead_ids))
        self.env.cr.execute(SQL("DELETE FROM %s WHERE %s", SQL.identifier(self._table), where))
        only = SQL("") if lead_ids is None else SQL("AND m.res_id = ANY(%s)", list(lead_ids))
        self.env.cr.execute(
            SQL(
                """INSERT INTO %(table)s (lead_id, stage_id, next_stage_id, date_from, date_to,
                                         lead_create_date)
                   SELECT m.res_id, s_old.id, s_new.id,
                          LAG(m.date) OVER (PARTITION BY m.res_id ORDER BY m.date, m.id),
                          m.date, l.create_date
                     FROM mail_tracking_value v
                     JOIN mail_message m ON m.id = v.mail_message_id
                     JOIN crm_lead l ON l.id = m.res_id
                LEFT JOIN crm_stage s_old ON s_old.id = v.old_value_integer
                LEFT JOIN crm_stage s_new ON s_new.id = v.new_value_integer
                    WHERE v.field_id = %(field)s AND m.model = 'crm.lead'
                      AND m.date IS NOT NULL %(only)s""",
                table=SQL.identifier(self._table),
                field=self.env["crm.lead"]._dashboard_stage_field_id(),
                only=only,
            )
        )
        count = self.env.cr.rowcount
        self.invalidate_model()
        return count

    @api.model
    def _log_moves(self, old_stages, new_stage_id, when):
        """Record that the leads of ``old_stages`` ({lead id: stage id left}) moved to
        ``new_stage_id`` at ``when``: their stay in the old stage began at their previous change
        of stage (or their creation). Two queries for any number of leads."""
        previous = {
            lead.id: date
            for lead, date in self._read_group(
                [("lead_id", "in", list(old_stages))], ["lead_id"], ["date_to:max"]
            )
        }
        self.create(
            [
                {
                    "lead_id": lead_id,
                    "stage_id": stage_id or False,
                    "next_stage_id": new_stage_id or False,
                    "date_from": previous.get(lead_id, False),
                    "date_to": when,
                }
                for lead_id, stage_id in old_stages.items()
            ]
        )

    @api.model
    def _merge_into(self, head, tails):
        """Give ``head`` the history of ``tails`` (as crm's merge gives it their messages):
        ``GIVE_FUNCTION``, see ``_init_merge_trigger``."""
        self.flush_model()
        self.env.cr.execute(
            SQL("SELECT %s(%s, %s)", SQL.identifier(GIVE_FUNCTION), head.id, tails.ids)
        )
        self.env["crm.executive.dashboard.norm"].invalidate_model()
        self.invalidate_model()


class CrmLead(models.Model):
    _inherit = "crm.lead"

    # Stage history (``crm.lead.stage.history``), searchable so that the dashboard's analyses
    # can open the leads behind their figures with a plain domain
    dashboard_visited_stage_ids = fields.Many2many(
        "crm.stage",
        string="Stages Visited",
        compute="_compute_dashboard_stage_history",
        search="_search_dashboard_visited_stage_ids",
        help="The stages the lead has been in: its current stage and every stage of its stage "
        "history.",
    )
    dashboard_reached_stage_ids = fields.Many2many(
        "crm.stage",
        string="Stages Reached",
        compute="_compute_dashboard_stage_history",
        search="_search_dashboard_reached_stage_ids",
        help="The funnel stages the lead reached: every stage up to (in the order of the "
        "stages) the furthest stage it has been in.",
    )

    def _compute_dashboard_stage_history(self):
        stages = self.env["crm.stage"].sudo().search([], order="sequence, id")
        rank = {stage.id: index for index, stage in enumerate(stages)}
        visited = {lead.id: set(lead.stage_id.ids) for lead in self}
        real_ids = [lead_id for lead_id in visited if isinstance(lead_id, int)]
        if real_ids:
            for lead, left, entered in (
                self.env["crm.lead.stage.history"]
                .sudo()
                ._read_group(
                    [("lead_id", "in", real_ids)],
                    ["lead_id"],
                    ["stage_id:array_agg", "next_stage_id:array_agg"],
                )
            ):
                visited[lead.id].update(stage for stage in left + entered if stage in rank)
        for lead in self:
            ids = visited[lead.id]
            lead.dashboard_visited_stage_ids = [(6, 0, sorted(ids))]
            furthest = max((rank[stage] for stage in ids if stage in rank), default=-1)
            lead.dashboard_reached_stage_ids = [(6, 0, stages[: furthest + 1].ids)]

    @api.model
    def _dashboard_stage_field_id(self):
        return self.env["ir.model.fields"]._get("crm.lead", "stage_id").id

    @api.model
    def _dashboard_stage_ids_arg(self, operator, value):
        if operator not in ("in", "="):
            raise UserError(_("Stage history can only be searched with 'in' or '='."))
        ids = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UserError(_("Stage history is searched by stage ids."))
        return list(ids)

    @api.model
    def _dashboard_visited_domain(self, stage_ids):
        """Domain of the leads that have been in one of ``stage_ids``."""
        self.env["crm.lead.stage.history"].flush_model(["lead_id", "stage_id", "next_stage_id"])
        return [
            "|",
            ("stage_id", "in", stage_ids),
            (
                "id",
                "in",
                SQL(
                    """(SELECT lead_id FROM crm_lead_stage_history
                         WHERE stage_id = ANY(%(stages)s) OR next_stage_id = ANY(%(stages)s))""",
                    stages=stage_ids,
                ),
            ),
        ]

    def _search_dashboard_visited_stage_ids(self, operator, value):
        return self._dashboard_visited_domain(self._dashboard_stage_ids_arg(operator, value))

    def _search_dashboard_reached_stage_ids(self, operator, value):
        """Reached stage S = has been in S or in a stage after it (order of the stages)."""
        ids = self._dashboard_stage_ids_arg(operator, value)
        stages = self.env["crm.stage"].sudo().search([], order="sequence, id")
        positions = [index for index, stage in enumerate(stages) if stage.id in ids]
        if not positions:
            return [("id", "in", [])]
        return self._dashboard_visited_domain(stages[min(positions) :].ids)

    # ------------------------------------------------------------
    # ORM
    # ------------------------------------------------------------

    def write(self, vals):
        if "stage_id" not in vals:
            return super().write(vals)
        new_stage_id = vals["stage_id"] or False
        moved = {lead.id: lead.stage_id.id for lead in self if lead.stage_id.id != new_stage_id}
        res = super().write(vals)
        if moved:
            self.env["crm.lead.stage.history"].sudo()._log_moves(
                moved, new_stage_id, fields.Datetime.now()
            )
            # a deal won or reopened changes the norms of won deals learned today
            stages = self.env["crm.stage"].sudo().browse({new_stage_id, *moved.values()} - {False})
            if any(stages.mapped("is_won")):
                self.env["crm.executive.dashboard.norm"].sudo()._invalidate_norms()
        return res

    # ------------------------------------------------------------
    # MERGE AND CONVERT LEADS / OPPORTUNITIES
    # ------------------------------------------------------------

    def _merge_dependences_history(self, opportunities):
        # the history follows the messages crm moves here (the trigger of
        # _init_merge_trigger, in crm's own queries); the merged leads without any message
        # (created without chatter) give theirs here
        without_messages = opportunities.filtered(lambda lead: not lead.message_ids)
        res = super()._merge_dependences_history(opportunities)
        if without_messages:
            self.env["crm.lead.stage.history"].sudo()._merge_into(self, without_messages)
        return res
