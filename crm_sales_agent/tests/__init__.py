from . import test_cron
from . import test_escalation
from . import test_drafting
from . import test_security
from . import test_performance
from . import test_settings
from . import test_privacy
from . import test_drafting_quality
