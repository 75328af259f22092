"""Retake the console screenshots in this folder by running the browser test that visits them.

Usage: python docs/screenshots/make.py (from the repository root, with the test extras and
Debian's chromium and chromium-driver installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    env = {**os.environ, "CONSOLE_SCREENSHOTS": str(HERE), "GATEWAY_TEST_DATABASES": "sqlite"}
    command = [sys.executable, "-m", "pytest", "-q", "tests/console/test_browser.py"]
    return subprocess.run(command, env=env, cwd=HERE.parents[1], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
