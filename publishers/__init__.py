"""One adapter per social network behind one interface.

Imports nothing from `saas`, `tenants` or `billing`, reads no configuration and
touches no database: adapters take credentials and return results.
"""
