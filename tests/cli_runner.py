"""``docsort`` in a child process, started from a zygote that has imported the CLI once.

A fresh ``python -m docsort.cli`` spends about 3 s importing (pandas, scikit-learn, the kinds)
before it reads its arguments, and the default test run starts it dozens of times. Here a
multiprocessing fork server imports ``docsort.cli`` once, before any thread exists, and forks
a child per call: the child gets the caller's environment, working folder, arguments and
stdin, runs the CLI's own ``main`` with its stdout and stderr in files, and exits with the
status ``main`` gives, as the installed command would. Only the imports are shared; every
call is its own process, so a crash, ``sys.exit`` or signal handler stays in it.

``DOCSORT_TEST_FRESH_CLI=1`` runs a fresh interpreter per call instead (the old way), for a
test that must see the process start, or to rule the zygote out when debugging.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TIMEOUT = 300  # seconds a call may take
CHILD_ENV = {"DOCSORT_NO_PROGRESS": "1", "COLUMNS": "200"}  # plain lines, wide enough to match

_context: Any = None


def run_cli(
    *args: str, stdin: str | None = None, cwd: str | os.PathLike | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``docsort ARGS`` in a child process (in ``cwd``, default this process's folder,
    with this process's environment and umask); its exit code, stdout and stderr."""
    env = {**os.environ, **CHILD_ENV}
    folder = os.fspath(cwd) if cwd is not None else os.getcwd()
    if os.environ.get("DOCSORT_TEST_FRESH_CLI") == "1":
        return subprocess.run([sys.executable, "-m", "docsort.cli", *args], capture_output=True,
                              text=True, input=stdin, env=env, cwd=folder,
                              timeout=TIMEOUT)  # fmt: skip
    umask = os.umask(0)
    os.umask(umask)
    with tempfile.TemporaryDirectory(prefix="docsort-cli-") as scratch:
        paths = {name: Path(scratch) / name for name in ("stdin", "stdout", "stderr")}
        paths["stdin"].write_text(stdin or "", encoding="utf-8")
        named = {name: str(path) for name, path in paths.items()}
        child = _zygote().Process(target=_main, args=(list(args), env, folder, umask, named))
        child.start()
        child.join(TIMEOUT)
        if child.is_alive():
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(["docsort", *args], TIMEOUT)
        out, err = (paths[n].read_text(encoding="utf-8", errors="replace")
                    for n in ("stdout", "stderr"))  # fmt: skip
    return subprocess.CompletedProcess(["docsort", *args], child.exitcode, out, err)


def _zygote() -> Any:
    """The fork server, started once with the CLI imported (and the children's terminal
    settings, which rich reads when the CLI's consoles are made at import)."""
    global _context
    if _context is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["docsort.cli"])
        saved = {name: os.environ.get(name) for name in CHILD_ENV}
        os.environ.update(CHILD_ENV)
        try:
            warm = context.Process(target=os.getpid)  # starts the server (and its imports) now
            warm.start()
            warm.join()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        _context = context
    return _context


def _main(
    args: list[str], env: dict[str, str], cwd: str, umask: int, paths: dict[str, str]
) -> None:
    """In the child: become ``docsort ARGS`` run from ``cwd`` with ``env`` and ``umask``."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    os.umask(umask)
    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY),
                            (2, "stderr", os.O_WRONLY)):  # fmt: skip
        os.dup2(os.open(paths[name], flags | (os.O_CREAT if fd else 0)), fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115  (the child's own)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.argv = ["docsort", *args]
    code = 0
    try:
        import docsort.cli

        docsort.cli.main()
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001  (a traceback, as the real command would print)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)
