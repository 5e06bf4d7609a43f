"""Customers' feedback: thumbs on the bot's answers and satisfaction surveys."""
