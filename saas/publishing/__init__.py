"""The publishing pipeline: the dispatcher claims due targets, jobs publish them, outcomes are recorded.

The database is the truth about what is due; Redis only carries claims to workers.
"""
