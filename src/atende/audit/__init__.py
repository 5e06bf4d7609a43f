"""The audit log: who did what in a company, and when, kept in the database.

Service functions call ``record(session, ...)`` in the transaction of the change they make,
so a change rolled back leaves no row. The actor (a person, an API key, or the system) and
the IP address come from the session: ``atende.tenancy.deps.Tenant.transaction`` binds the
caller, and a session bound to nobody records the system. This package imports only the
database layer, so every domain (tenancy included) may record.
"""
