"""Answerers: the port, and the offline extractive answerer (LLM answerers come later)."""
