"""Container health check: exit 0 when the URL answers 2xx, else 1 (no curl in the image).

Usage: ``python healthcheck.py [URL]``; the default is ``/health/ready`` on ``ATENDE_PORT``.
"""

import os
import sys
import urllib.request

# longer than /health/ready may take (atende.observability.health.BUDGET_SECONDS: 6 s); the
# container runtime's own timeout (Dockerfile, compose, ECS: 10 s) is longer still, so a slow
# answer is reported here, with its reason
TIMEOUT_SECONDS = 8

url = (
    sys.argv[1]
    if len(sys.argv) > 1
    else f"http://127.0.0.1:{os.environ.get('ATENDE_PORT', '8000')}/health/ready"
)
try:
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (a fixed local URL)
        sys.exit(0 if 200 <= response.status < 300 else 1)
except Exception as exc:  # HTTP 503, refused, timed out: unhealthy, and say why
    print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    sys.exit(1)
