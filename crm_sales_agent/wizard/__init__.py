from . import crm_sales_agent_draft
