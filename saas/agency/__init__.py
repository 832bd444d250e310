"""The agency console: one view across the clients an agency member may work in."""
