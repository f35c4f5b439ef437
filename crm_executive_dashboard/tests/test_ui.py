from odoo import fields
from odoo.tests import HttpCase, tagged


@tagged("post_install", "-at_install", "crm_executive_dashboard")
class TestDashboardUi(HttpCase):
    def test_dashboard_tour(self):
        """Every chart and figure has something to click this year, whatever the demo data:
        an open opportunity due this month (pipeline, forecast), a won deal of a team (trends,
        team chart), AI-scored leads open, won and lost, with every enrichment status (AI
        chart and card) and a done activity of the admin's lead."""
        admin = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Tour Team"})
        Lead = self.env["crm.lead"].with_context(tracking_disable=True)
        today = fields.Date.context_today(Lead)
        open_lead, won_lead, lost_lead, pending_lead, failed_lead = Lead.create(
            [
                {
                    "name": "Tour lead",
                    "type": "opportunity",
                    "expected_revenue": 1234,
                    "probability": 80,
                    "date_deadline": today,
                    "team_id": team.id,
                    "user_id": admin.id,
                },
                {
                    "name": "Tour won lead",
                    "type": "opportunity",
                    "expected_revenue": 5000,
                    "team_id": team.id,
                    "user_id": admin.id,
                },
            ]
            + [
                {"name": name, "type": "opportunity", "team_id": team.id, "user_id": admin.id}
                for name in ("Tour lost lead", "Tour pending lead", "Tour failed lead")
            ]
        )
        won_lead.action_set_won()
        lost_lead.action_set_lost()
        self.env.flush_all()
        # scored (open and won: high, lost: low) or queued for the AI
        self.env.cr.execute(
            """UPDATE crm_lead SET ai_last_enrichment_date = CASE WHEN s.score IS NOT NULL
                                                              THEN now() at time zone 'UTC' END,
                      ai_probability_score = COALESCE(s.score, 0),
                      ai_enrichment_status = s.status
                 FROM (VALUES (%s, 85.0, 'completed'), (%s, 90.0, 'completed'),
                              (%s, 10.0, 'completed'), (%s, NULL, 'pending'),
                              (%s, NULL, 'failed')) AS s(id, score, status)
                WHERE crm_lead.id = s.id""",
            (open_lead.id, won_lead.id, lost_lead.id, pending_lead.id, failed_lead.id),
        )
        open_lead.activity_schedule("mail.mail_activity_data_todo", user_id=admin.id).action_done()
        self.start_tour("/web", "crm_executive_dashboard_tour", login="admin")

    def test_analyses_tour(self):
        """Each analysis page opens, and one element of each of its charts and tables opens its
        leads without error. This month: three deals won and one lost after stays of three days
        in their first stage (stage history through the ORM), an open one stuck there for 30
        days, all from a source and campaign with a cost."""
        admin = self.env.ref("base.user_admin")
        team = self.env["crm.team"].create({"name": "Tour Analyses Team"})
        source = self.env["utm.source"].create({"name": "Tour Source"})
        campaign = self.env["utm.campaign"].create({"name": "Tour Campaign"})
        reason = self.env["crm.lost.reason"].create({"name": "Tour reason"})
        stages = self.env["crm.stage"].search([("is_won", "=", False)], order="sequence, id")
        won_stage = self.env["crm.stage"].search([("is_won", "=", True)], limit=1)
        leads = self.env["crm.lead"].create(
            [
                {
                    "name": "Tour analysis %s" % index,
                    "type": "opportunity",
                    "expected_revenue": 1000 * (index + 1),
                    "team_id": team.id,
                    "user_id": admin.id,
                    "source_id": source.id,
                    "campaign_id": campaign.id,
                    "stage_id": stages[0].id,
                }
                for index in range(5)
            ]
        )
        self.env.flush_all()
        self.env.cr.precommit.run()
        # created three days ago: the lead and the tracking of its first stage
        self.env.cr.execute(
            "UPDATE crm_lead SET create_date = create_date - interval '3 days' WHERE id = ANY(%s)",
            (leads.ids,),
        )
        self.env.cr.execute(
            """UPDATE mail_message SET date = date - interval '3 days'
                WHERE model = 'crm.lead' AND res_id = ANY(%s)""",
            (leads.ids,),
        )
        self.env.invalidate_all()
        leads[:4].write({"stage_id": stages[1].id})
        leads[:3].write({"stage_id": won_stage.id})
        leads[3].action_set_lost(lost_reason_id=reason.id)
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.env.cr.execute(
            "UPDATE crm_lead SET date_last_stage_update = now() - interval '30 days' WHERE id = %s",
            (leads[4].id,),
        )
        today = fields.Date.context_today(admin)
        self.env["crm.campaign.cost"].create(
            {
                "campaign_id": campaign.id,
                "source_id": source.id,
                "date_from": today.replace(day=1),
                "date_to": today,
                "amount": 500,
            }
        )
        self.start_tour(
            "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
            "crm_executive_dashboard_analyses_tour",
            login="admin",
            # eleven lists opened and closed: more than the default minute on a loaded machine
            timeout=300,
        )

    def test_bottlenecks_empty_tour(self):
        """Without any stage history of won deals (a new database, or history not kept), the
        bottlenecks page says why its tables are empty, and its total opens an empty list."""
        self.env["crm.lead.stage.history"].sudo().search([]).unlink()
        self.env["crm.executive.dashboard.norm"].sudo()._invalidate_norms()
        self.start_tour(
            "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
            "crm_executive_dashboard_bottlenecks_empty_tour",
            login="admin",
        )

    def test_digest_sample_tour(self):
        """The dashboard's "Send me a sample now": one sample digest queued, then mailed to
        the user by the digest cron."""
        admin = self.env.ref("base.user_admin")
        admin.email = "admin@yourcompany.example.com"
        Log = self.env["crm.dashboard.digest.log"].sudo()
        before = Log.search([])
        self.start_tour(
            "/web#action=crm_executive_dashboard.crm_executive_dashboard_action",
            "crm_executive_dashboard_digest_sample_tour",
            login="admin",
            timeout=180,
        )
        sample = Log.search([]) - before
        self.assertEqual(len(sample), 1)
        self.assertTrue(sample.is_sample)
        self.assertEqual(sample.user_id, admin)
        # rendered and mailed by the digest cron, not in the click's request
        self.assertEqual(sample.state, "pending")
        self.env["crm.dashboard.digest.subscription"]._cron_send_digests()
        self.assertEqual(sample.state, "sent")
        self.assertIn(admin.partner_id, sample.mail_id.recipient_ids)
        self.assertTrue(sample.attachment_id, "the PDF is attached")
