"""The human side: teams, agents' availability, business hours and holidays, handoff rules
and the queue. Above ``tenancy`` (which it reads) and ``conversations`` (whose queue it
reads), below the engine; see ``teams.service``."""
