"""Posts (the editorial object), their targets (one per channel) and the attempt log."""
