"""A served registry alias, followed: ``docsort serve models:/NAME@champion`` asks the registry
every ``every`` seconds which version the alias names and, when it has moved, loads that
version beside the one serving and swaps it in between two model calls (under the service's
lock: a batch in flight finishes on the old model, the next runs on the new one), so no
request fails. A registry that cannot be reached, or a version that does not load, is logged
and the serving model stays."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from docsort import api
from docsort.api.registry import resolve_reference
from docsort.errors import DocsortError

log = logging.getLogger("docsort.serve")


class AliasWatch:
    def __init__(self, service: Any, reference: str, version: str, runtime: Any, every: float):
        self.service = service
        self.reference = reference
        self.version = version
        self.runtime = runtime
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def follow(
        cls, model: str | Path, service: Any, runtime: Any, every: float
    ) -> AliasWatch | None:
        """A watch for an alias reference (its version named in the service's info); None for
        a model directory or a pinned version (``models:/NAME/3``), which never change."""
        if not str(model).startswith("models:/") or every <= 0:
            return None
        resolved = resolve_reference(str(model))
        service.info = service.info.model_copy(
            update={"name": resolved.name, "version": resolved.version}
        )
        if resolved.alias is None:
            return None
        return cls(service, str(model), resolved.version, runtime, every)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alias-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.check()

    def check(self) -> bool:
        """One look at the registry; True if the model was swapped."""
        try:
            resolved = resolve_reference(self.reference)
            if resolved.version == self.version:
                return False
            model = api.open_model(resolved.path, self.runtime)  # loaded outside the lock
            drift = self.service.new_drift(model)  # its reference, predicted by it
        except DocsortError as exc:
            log.warning("%s: %s; still serving version %s", self.reference, exc, self.version)
            return False
        service = self.service
        with service.lock:  # between two model calls
            service.model = model
            service.drift = drift
            service.info = service.info.model_copy(
                update={"kind": model.kind, "version": resolved.version}
            )
        log.info("%s moved to version %s (from %s): serving it", self.reference,
                 resolved.version, self.version)  # fmt: skip
        self.version = resolved.version
        return True
