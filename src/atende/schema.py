"""Imports every table so that Alembic and ``Base.metadata`` see the whole schema."""

from atende.analytics import models as analytics
from atende.audit import models as audit
from atende.channels import models as channels
from atende.channels.email import models as email
from atende.channels.email.providers import models as email_providers
from atende.conversations import models as conversations
from atende.engine import models as engine
from atende.feedback import models as feedback
from atende.feedback import ratings_models as ratings
from atende.gaps import models as gaps
from atende.knowledge import models as knowledge
from atende.media import models as media
from atende.observability import models as observability
from atende.sla import models as sla
from atende.teams import models as teams
from atende.tenancy import models as tenancy
from atende.webhooks import models as webhooks

__all__ = [
    "analytics",
    "audit",
    "channels",
    "conversations",
    "email",
    "email_providers",
    "engine",
    "feedback",
    "gaps",
    "knowledge",
    "media",
    "observability",
    "ratings",
    "sla",
    "teams",
    "tenancy",
    "webhooks",
]
