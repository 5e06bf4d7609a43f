"""Customer feedback: satisfaction surveys after a resolution (CSAT) and ratings of bot answers."""
