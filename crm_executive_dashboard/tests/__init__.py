from . import test_dashboard_data
from . import test_controller
from . import test_performance
from . import test_ui
from . import test_dashboard_fixes
from . import test_analyses
from . import test_digest
from . import test_analyses_http
