"""Inbound SMS: intake rules (keywords, consent, moderation), routing and processing."""
