"""`smsq.campaign` by name: what a producer that can only reach the broker may ask for.

A task message is untrusted input, so it never names an arbitrary file on the
worker: its audience is data (`recipients`, a stored `group`, a `gatum_group`)
or a CSV path under the operator's `SMSQ_IMPORT_DIR` (unset: every path is
refused). The path is checked before anything is opened: no `..`, no symlink
anywhere on the way, nothing outside the directory. The Python API and the
CLI run as the operator on the operator's machine and may read any file the
operator can (the line is the broker: what arrives by name is checked here).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

from providers.errors import ValidationError
from worker.campaigns import service
from worker.engine import Engine


def import_path(import_dir: str, name: Any) -> str:
    """The file `name` names under `import_dir`, or ValidationError saying why not."""
    if not import_dir:
        raise ValidationError("csv paths are refused by name: this worker has no "
                              "SMSQ_IMPORT_DIR; send the rows as recipients", field="csv")
    if not isinstance(name, str) or not name.strip() or "\x00" in name or len(name) > 1024:
        raise ValidationError("csv must be a file name under SMSQ_IMPORT_DIR", field="csv")
    shown = repr(name[:200])
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise ValidationError(f"csv {shown} contains '..'", field="csv")
    root = os.path.realpath(import_dir)
    wanted = os.path.normpath(os.path.join(root, name))
    if os.path.commonpath([root, wanted]) != root or wanted == root:
        raise ValidationError(f"csv {shown} is outside SMSQ_IMPORT_DIR", field="csv")
    if os.path.realpath(wanted) != wanted:
        raise ValidationError(f"csv {shown} goes through a symlink", field="csv")
    return wanted


def create(engine: Engine, campaign_id: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Create a campaign from task kwargs; a CSV only from under SMSQ_IMPORT_DIR."""
    kw = dict(kwargs)
    if kw.get("csv") is not None:
        kw["csv"] = import_path(engine.cfg.import_dir, kw["csv"])
    for local in ("progress",):
        if local in kw:
            raise ValidationError(f"unknown argument {local!r}", field=local)
    return service.create(engine, campaign_id=campaign_id, **kw)
