"""In-app and email notifications about things people must act on."""
