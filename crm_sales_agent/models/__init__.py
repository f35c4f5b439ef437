from . import crm_sales_agent_stage_activity
from . import crm_sales_agent_escalation
from . import crm_stage
from . import mail_activity
from . import crm_lead
from . import crm_sales_agent_lead_state
from . import res_config_settings
