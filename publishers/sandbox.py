"""Sandbox: a small social network served by Multipost itself, for demos and tests.

THE SANDBOX PROTOCOL (the in-app server `saas/sandbox`, the test fake
`tests/fakes/network.py` and this adapter all follow it exactly):

Base URL: settings["base_url"], e.g. "http://127.0.0.1:5000/sandbox". Paths below are relative to it.
Auth: `Authorization: Bearer <access_token>` on every /api call.

GET  /api/v1/me
     200 {"id": "acct_…", "handle": "bluebell", "display_name": "Bluebell Bakery", "url": "<base>/@bluebell"}
POST /api/v1/posts      JSON {"text": "...", "media_urls": ["https://…", …]}   optional header Idempotency-Key: <≤128 chars>
     201 {"id": "post_…", "url": "<base>/@handle/post_…", "text": "...", "created_at": "<ISO 8601 UTC>"}
     200 same body: a repeat of an Idempotency-Key this account used in the last hour returns the ORIGINAL
         post and creates nothing.
     422 {"error": "Text is longer than 500 characters"} / {"error": "Text can't be blank"} (blank text and no media)
GET  /api/v1/posts?since=<ISO 8601>&limit=<1..100, default 40>
     200 [post, …] this account's posts created at or after `since`, newest first (read-back)
GET  /api/v1/posts/<id>        200 post | 404 {"error": "Post not found"}
DELETE /api/v1/posts/<id>      200 post | 404
POST /oauth/token   form grant_type=refresh_token&refresh_token=<…>
     200 {"access_token", "refresh_token", "token_type": "Bearer", "expires_in": <seconds>}   (both tokens rotate)
     400 {"error": "invalid_grant"}

Errors on /api calls:
     401 {"error": "token_expired"} with `WWW-Authenticate: Bearer error="invalid_token", error_description="expired"`
     401 {"error": "token_revoked"} for an unknown or revoked token
     429 {"error": "Too many requests"} with X-RateLimit-Limit, X-RateLimit-Remaining: 0,
         X-RateLimit-Reset: <ISO 8601 UTC> and Retry-After: <seconds>; `X-RateLimit-Scope: app` when the whole
         application is limited rather than this account
     5xx {"error": "…"}
Every /api response carries X-RateLimit-Limit / -Remaining / -Reset.
Text is counted in characters (code points); the limit is 500. At most 4 media URLs.
"""
