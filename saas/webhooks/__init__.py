"""Outgoing webhooks: a workspace's endpoints, the events it emits, and their signed, retried delivery.

Events are written by the code that changes state, in the same transaction (`events.py`, a transactional
outbox); the clock hands due deliveries to RQ and the `deliver` job posts them (`delivery.py`).
"""
