"""Knowledge gaps: the questions the bot handed to people because the knowledge base did not
cover them, grouped into topics by meaning and ranked by how often they are asked.

``collect`` says which handoffs count (``is_gap``), ``clustering`` forms the topics (pure:
vectors in, groups out), ``service`` keeps the per-company tables up to date and reads them
for the dashboard, and ``tasks`` runs the refresh periodically."""
