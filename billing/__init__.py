"""Plans, entitlements, the Stripe gateway and webhook handling. No Flask imports."""
