"""Contacts, conversations, messages and the conversation state machine."""
