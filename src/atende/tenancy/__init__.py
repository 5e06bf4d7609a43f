"""Companies, users, roles, API keys, the caller (``Tenant``), the tenant scope every request
runs in, and company settings read through typed sections. The human side (teams,
availability, hours, handoff rules, the queue) is ``atende.teams``, above this package."""
