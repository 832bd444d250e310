"""Write requirements.lock: every package a fresh `pip install -e '.[dev]'` resolves to, pinned.

`make lock` runs it (pip resolves against PyPI without installing anything); `make install`
installs with the lock as constraints, and `make check` audits exactly that set with pip-audit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `make install` upgrades these itself first; pinning them too would make pip replace itself mid-install.
INSTALLERS = {"pip", "setuptools", "wheel"}
HEADER = """\
# Every package of `pip install -e '.[dev]'`, pinned: installed as constraints by `make install`
# and audited by `make check` (pip-audit). Refresh with `make lock` after changing pyproject.toml.
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed"]
            + ["--report", str(report), "-e", ".[dev]"],
            cwd=ROOT,
            check=True,
        )
        resolved = json.loads(report.read_text())["install"]
    pins = sorted(
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in resolved
        if not item.get("is_direct")  # the project itself
        and item["metadata"]["name"].lower() not in INSTALLERS
    )
    (ROOT / "requirements.lock").write_text(HEADER + "\n".join(pins) + "\n")
    print(f"requirements.lock: {len(pins)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
