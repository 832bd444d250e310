"""The Sandbox network: a tiny social network served by Multipost itself (see publishers/sandbox.py).

It stands outside the tenancy on purpose: it plays an external service that
channels publish to over HTTP, so its tables belong to no tenant.
"""
