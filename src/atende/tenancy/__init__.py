"""Companies, users, roles, API keys and the tenant scope every request runs in."""
