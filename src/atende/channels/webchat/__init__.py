"""The embeddable web chat: widget assets, visitor endpoints and the live SSE stream."""
