import json

from odoo.tests import Form, HttpCase, tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import mail_new_test_user

from ..lib import qualification
from .common import LlmLeadScoringCommon, analysis_json, openai_body

DESCRIPTION = (
    "<p>Hello, we are looking for a new ERP. The CFO signs off on the purchase.</p>"
    "<p>We want to go live before the end of Q3 2027.</p>"
)
INBOUND = "Our budget for this project is 40k EUR, already approved."


@tagged("llm_lead_scoring", "llm_qualification")
class TestQualification(LlmLeadScoringCommon):
    def _lead(self, **vals):
        lead = self._full_lead(description=DESCRIPTION, **vals)
        lead.message_post(
            body=INBOUND,
            author_id=self.contact_1.id,
            message_type="email",
            subtype_xmlid="mail.mt_comment",
        )
        # an internal note never counts as what the customer said
        lead.message_post(
            body="Note: budget of 999k USD approved",
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        return lead

    def _bant(self, lead):
        return {
            item: (lead["ai_bant_%s" % item], lead["ai_bant_%s_by" % item])
            for item in qualification.ITEMS
        }

    def test_bant_from_rules_reads_description_and_inbound_messages(self):
        lead = self._lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(
            self._bant(lead),
            {
                "budget": ("confirmed", "rules"),
                "authority": ("confirmed", "rules"),
                "need": ("partly", "rules"),
                "timeline": ("confirmed", "rules"),
            },
        )
        # the budget comes from the customer's e-mail, not from the internal note
        self.assertEqual(lead.ai_bant_budget_evidence, INBOUND)
        self.assertEqual(lead.ai_bant_authority_evidence, "The CFO signs off on the purchase.")
        self.assertIn("Q3 2027", lead.ai_bant_timeline_evidence)
        self.assertEqual(lead.ai_qualification_status, "qualified")  # 2 + 2 + 1 + 2 = 7 points

    def test_bant_from_llm_answer_evidence_checked(self):
        self._create_provider()
        answer = analysis_json(
            qualification={
                # in the e-mail sent: kept
                "budget": {
                    "status": "partly",
                    "evidence": "our budget for this project is 40k EUR",
                },
                # nowhere in the lead: dropped, the rules decide
                "authority": {"status": "partly", "evidence": "The CEO will sign next week."},
                "need": {"status": "confirmed", "evidence": "we are looking for a new ERP."},
                "timeline": {"status": "unknown", "evidence": ""},
                "colour": {"status": "confirmed", "evidence": "Hello"},
            }
        )
        self.server.default = (200, {}, openai_body(answer), 0)
        lead = self._lead()
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(
            self._bant(lead),
            {
                "budget": ("partly", "llm"),
                "authority": ("confirmed", "rules"),
                "need": ("confirmed", "llm"),
                "timeline": ("unknown", "llm"),
            },
        )
        self.assertEqual(lead.ai_bant_budget_evidence, "our budget for this project is 40k EUR")
        self.assertEqual(lead.ai_bant_authority_evidence, "The CFO signs off on the purchase.")
        self.assertFalse(lead.ai_bant_timeline_evidence)
        self.assertEqual(lead.ai_qualification_status, "partly")  # 1 + 2 + 2 + 0 = 5 points
        # one call: the scorecard is part of the scoring answer, asked with the inbound e-mail
        self.assertEqual(len(self.server.requests), 1)
        sent = json.dumps(self.server.requests[0]["json"])
        self.assertIn("qualification", sent)
        self.assertIn("40k EUR", sent)
        self.assertNotIn("999k", sent)

    def test_evidence_must_be_in_the_text_sent(self):
        """A sentence cut off by the description cap was not sent: it cannot be evidence."""
        self._set_config(max_prompt_chars=200)
        self._create_provider()
        tail = "The managing director decides alone."
        description = "<p>%s</p><p>%s</p>" % ("We compare tools. " * 12, tail)
        answer = analysis_json(
            qualification={"authority": {"status": "confirmed", "evidence": tail}}
        )
        self.server.default = (200, {}, openai_body(answer), 0)
        lead = self._full_lead(description=description)
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertNotIn(tail, json.dumps(self.server.requests[0]["json"]))
        # the rules read the whole description: they find it, the AI's claim was dropped
        self.assertEqual(self._bant(lead)["authority"], ("confirmed", "rules"))

    def test_manual_edit_is_kept_by_the_next_scoring(self):
        lead = self._lead()
        self.env["crm.lead"]._ai_enrich(lead)
        lead.with_user(self.user_sales_salesman).write(
            {"ai_bant_need": "confirmed", "ai_bant_need_evidence": "Call of Monday: 50 seats."}
        )
        self.assertEqual(self._bant(lead)["need"], ("confirmed", "manual"))
        lead.with_user(self.user_sales_salesman).ai_bant_timeline_evidence = "Said June."
        self.assertEqual(lead.ai_bant_timeline_by, "manual")
        # the next scoring (LLM this time) proposes other values: the salesperson's stay
        self._create_provider()
        answer = analysis_json(
            qualification={
                "need": {"status": "unknown", "evidence": ""},
                "timeline": {"status": "unknown", "evidence": ""},
                "budget": {"status": "unknown", "evidence": ""},
            }
        )
        self.server.default = (200, {}, openai_body(answer), 0)
        self.env["crm.lead"]._ai_enrich(lead)
        self.assertEqual(self._bant(lead)["need"], ("confirmed", "manual"))
        self.assertEqual(lead.ai_bant_need_evidence, "Call of Monday: 50 seats.")
        self.assertEqual(self._bant(lead)["timeline"], ("confirmed", "manual"))
        self.assertEqual(lead.ai_bant_timeline_evidence, "Said June.")
        self.assertEqual(self._bant(lead)["budget"], ("unknown", "llm"))

    def test_edit_in_the_lead_form(self):
        lead = self._lead()
        self.env["crm.lead"]._ai_enrich(lead)
        with Form(lead.with_user(self.user_sales_salesman)) as form:
            form.ai_bant_authority = "partly"
            form.ai_bant_authority_evidence = "The IT lead recommends, the board decides."
        self.assertEqual(self._bant(lead)["authority"], ("partly", "manual"))
        self.assertEqual(self._bant(lead)["budget"], ("confirmed", "rules"))
        self.assertEqual(lead.ai_qualification_status, "partly")  # 2 + 1 + 1 + 2 = 6 points

    def test_qualification_status_definition(self):
        status = qualification.status
        self.assertEqual(status(["confirmed"] * 4), "qualified")
        self.assertEqual(status(["confirmed"] * 3 + ["partly"]), "qualified")
        self.assertEqual(status(["confirmed"] * 3 + ["unknown"]), "partly")
        self.assertEqual(status(["partly", "partly", "unknown", False]), "unqualified")
        self.assertEqual(status(["confirmed", "partly", "unknown", "unknown"]), "partly")
        lead = self._full_lead(description=False)
        self.assertEqual(lead.ai_qualification_status, "unqualified")
        lead.write({"ai_bant_budget": "confirmed", "ai_bant_need": "confirmed"})
        self.assertEqual(lead.ai_qualification_status, "partly")

    def test_install_on_existing_leads(self):
        """Installed into a database that has leads: they read unknown and unqualified at
        once (no UPDATE of every lead), the database keeps no default of its own, and a lead
        created afterwards gets Odoo's defaults."""
        lead = self._full_lead(description=False)
        columns = ["ai_bant_%s" % item for item in qualification.ITEMS]
        columns.append("ai_qualification_status")
        for column in columns:
            self.env.cr.execute(f'ALTER TABLE crm_lead DROP COLUMN "{column}"')
        self.registry.init_models(
            self.env.cr, ["crm.lead"], {"module": "llm_lead_scoring"}, install=False
        )
        self.env.invalidate_all()
        self.assertEqual([lead[column] for column in columns], ["unknown"] * 4 + ["unqualified"])
        self.env.cr.execute(
            """SELECT column_name, column_default FROM information_schema.columns
                WHERE table_name = 'crm_lead' AND column_name = ANY(%s)""",
            [columns],
        )
        self.assertEqual(dict(self.env.cr.fetchall()), dict.fromkeys(columns))
        later = self._full_lead(description=False)
        self.assertEqual(later.ai_bant_need, "unknown")
        self.assertEqual(later.ai_qualification_status, "unqualified")

    def test_rules(self):
        rules = qualification.from_rules
        self.assertEqual(rules(["Send me a brochure."])["budget"], ("unknown", False))
        self.assertEqual(rules(["We have a budget."])["budget"][0], "partly")
        self.assertEqual(rules(["Budget: $25,000."])["budget"][0], "confirmed")
        self.assertEqual(rules(["I will ask our director."])["authority"][0], "partly")
        self.assertEqual(rules(["I am the decision maker."])["authority"][0], "confirmed")
        self.assertEqual(rules(["We need 30 licences."])["need"][0], "confirmed")
        self.assertEqual(rules(["Needed asap."])["timeline"][0], "partly")
        self.assertEqual(rules(["Start within two weeks."])["timeline"][0], "confirmed")


@tagged("post_install", "-at_install", "llm_lead_scoring", "llm_qualification")
class TestQualificationAccess(LlmLeadScoringCommon, HttpCase):
    """The scorecard is edited like any lead field, over JSON-RPC as the form saves it: only
    who may write the lead may set it, and the edit is marked as the salesperson's."""

    def _rpc(self, login, method, args, kwargs=None):
        self.authenticate(login, login + "x" * (8 - len(login)))  # new_test_user's password
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"model": "crm.lead", "method": method, "args": args, "kwargs": kwargs or {}},
        }
        with mute_logger("odoo.http"):
            response = self.url_open(
                "/web/dataset/call_kw/crm.lead/%s" % method,
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        return response.json()

    def test_roles(self):
        company = self.company_main
        portal = mail_new_test_user(
            self.env, login="q_portal", groups="base.group_portal", company_id=company.id
        )
        employee = mail_new_test_user(
            self.env, login="q_employee", groups="base.group_user", company_id=company.id
        )
        own = self._full_lead(user_id=self.user_sales_salesman.id)
        other = self._full_lead(user_id=self.user_sales_manager.id)
        vals = {"ai_bant_budget": "confirmed", "ai_bant_budget_evidence": "Said 10k."}
        read = ["ai_bant_budget", "ai_what_would_move", "ai_qualification_status"]
        for user in (portal, employee):
            for method, args in (("write", [[own.id], vals]), ("read", [[own.id], read])):
                answer = self._rpc(user.login, method, args)
                self.assertEqual(answer["error"]["data"]["name"], "odoo.exceptions.AccessError")
        # salesperson: own lead yes, a colleague's no
        answer = self._rpc(self.user_sales_salesman.login, "write", [[other.id], vals])
        self.assertEqual(answer["error"]["data"]["name"], "odoo.exceptions.AccessError")
        for user, lead in (
            (self.user_sales_salesman, own),
            (self.user_sales_leads, other),
            (self.user_sales_manager, other),
        ):
            answer = self._rpc(user.login, "write", [[lead.id], vals])
            self.assertTrue(answer.get("result"), answer)
            answer = self._rpc(user.login, "read", [[lead.id], read])
            self.assertEqual(answer["result"][0]["ai_qualification_status"], "unqualified")
        self.assertEqual((own.ai_bant_budget, own.ai_bant_budget_by), ("confirmed", "manual"))
