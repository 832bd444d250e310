"""Approvals: a workspace's policy, requests bound to one revision of a post, decisions, comments, review links."""
