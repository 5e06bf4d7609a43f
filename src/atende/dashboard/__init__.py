"""The team's web dashboard under ``/app``: server-rendered Jinja2 pages with HTMX, in the
reader's language (``i18n``), behind a session cookie (``auth``; sessions are tenancy's).
Pages call the same service functions as the API with the same caller (``Tenant``), never
queries of their own. See docs/DASHBOARD.md."""
