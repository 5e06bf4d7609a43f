"""The bot turn: a pipeline of small steps over ports, its decisions and its traces."""
