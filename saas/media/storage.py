"""Where media bytes live. Local files under var/media/ today; object storage can implement the same three calls.

Keys are chosen by us (tenant id + random name), never by the uploader, so a
file name cannot climb out of the media directory or collide across tenants.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Protocol

from flask import current_app


class Storage(Protocol):
    def save(self, tenant_id: int, data: bytes, extension: str) -> str:
        """Store `data`; return its key."""

    def source(self, key: str) -> str:
        """A path or URL the publisher adapters can read the file from."""

    def delete(self, key: str) -> None: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("media key outside the media directory")
        return path

    def save(self, tenant_id: int, data: bytes, extension: str) -> str:
        key = f"{tenant_id}/{uuid.uuid4().hex}.{extension}"
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def source(self, key: str) -> str:
        return str(self._path(key))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def storage() -> Storage:
    """The app's media storage (local under VAR_DIR/media unless configured otherwise)."""
    found = current_app.extensions.get("media_storage")
    if found is None:
        root = Path(current_app.config.get("MEDIA_DIR") or Path(current_app.config["VAR_DIR"]) / "media")
        found = current_app.extensions["media_storage"] = LocalStorage(root)
    return found
