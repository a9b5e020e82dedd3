"""Outbound SMS and delivery status: segments, consent and quiet-hours gates, idempotent sends to
CXone, a signed delivery webhook and the per-message status state machine."""
