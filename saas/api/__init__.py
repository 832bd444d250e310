"""The public REST API under /api/v1: token-authenticated JSON, described by its own OpenAPI document."""
