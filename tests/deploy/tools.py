"""Debian tools a deploy check runs: installed with apt-get when missing, never skipped."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def tool(command: str, package: str) -> str:
    """The path of `command`; apt-get installs `package` first when it is missing (CI runs as
    root); a machine where that is impossible fails the test, naming the package."""
    found = shutil.which(command)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    found = shutil.which(command)
    if not found:
        pytest.fail(f"{command} is missing and `apt-get install {package}` did not provide it")
    return found
