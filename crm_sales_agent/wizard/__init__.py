from . import crm_sales_agent_draft
from . import crm_sales_agent_dry_run
from . import crm_sales_agent_draft_queue
