"""The dashboard's fixtures (a company with a member of every role, the browser) here too."""

from tests.dashboard.conftest import chromium, open_context, rival, team

__all__ = ["chromium", "open_context", "rival", "team"]
