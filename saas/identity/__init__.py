"""Who is signing in, and how sure we are: sessions, two-factor authentication, account security events."""
