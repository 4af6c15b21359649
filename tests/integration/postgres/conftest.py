from tests.integration.workflow.conftest import security, start_workflow
from tests.postgres import postgres_dsn, postgres_server

__all__ = ["postgres_dsn", "postgres_server", "security", "start_workflow"]
