"""A workspace's media library: uploaded images and videos, checked once, reused across posts."""
