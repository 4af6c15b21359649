"""healthd's HTTP dashboard: live system health over Server-Sent Events, JSON and HTML
exports, and ``/metrics`` (static assets in ``static/``, no build step)."""

from healthd.dashboard._api import DashboardApi
from healthd.dashboard._model import DashboardModel
from healthd.dashboard._report import render_report
from healthd.dashboard._runs import RunsReader
from healthd.dashboard._server import DashboardServer, host_allowed

__all__ = ["DashboardApi", "DashboardModel", "DashboardServer", "RunsReader", "host_allowed", "render_report"]
