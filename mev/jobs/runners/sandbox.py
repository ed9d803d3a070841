"""Confinement of local tools with bubblewrap (`bwrap`): what a tool may read, write and reach.

A confined tool sees the system's programs and libraries (/usr and the /bin, /lib... links), a few
harmless files of /etc, the Python installation it runs on, its operation's bundle (with `_common`),
all read-only; its working directory read-write, the inputs staged there read-only; a private /tmp
and /dev/shm (folders of the working directory, so big temporary files go to disk, not memory); its
own /proc and a minimal /dev. The rest of the sandbox's file tree is read-only. Everything else is absent: other jobs, the stored files of every user, the data
directory, the repository and its `.env`, /etc/mev, /root, /home. Every namespace is new, the network
one included, unless the operation's spec says `"network": true`; the tool runs in a new session and
dies with the wrapper that supervises it. Paths keep their host names, so the absolute paths staging
writes into inputs.json work unchanged.

`MEV_LOCAL_SANDBOX` chooses: `auto` (bubblewrap when a probe run works here, else unconfined with one
warning per process), `bwrap` (required: a job fails with a clear message without it), `none`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

logger = logging.getLogger("mev.jobs")

MODES = ("auto", "bwrap", "none")
# Looked up on PATH; tests point it at a missing binary to play a machine without bubblewrap.
BWRAP = "bwrap"
# Relative to the working directory: the folders mounted as the tool's /tmp and /dev/shm (on disk, so
# big temporary files do not take memory the address-space limit does not count).
PRIVATE_TMP = ".sandbox/tmp"
PRIVATE_SHM = ".sandbox/shm"
INPUTS_DIR = "inputs"
SPEC_FILE = "operation_spec.json"
COMMON_DIR = "_common"

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# What programs read from /etc to start at all (the loader, alternatives links, time zone, user names):
# nothing secret, unlike the rest of /etc (e.g. /etc/mev/mev.env, ssh keys, database configuration).
_ETC_ALWAYS = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
               "passwd", "group", "nsswitch.conf", "hosts")
# Only for operations with network access: name resolution and the public CA certificates.
_ETC_NETWORK = ("resolv.conf", "host.conf", "gai.conf", "services", "protocols", "ssl/certs", "ssl/openssl.cnf",
                "ca-certificates.conf")
_PROBE_TIMEOUT_SECONDS = 10

_lock = threading.Lock()
_probe_results: dict[str, str | None] = {}
_warned = False


class SandboxUnavailable(Exception):
    """MEV_LOCAL_SANDBOX=bwrap, but bubblewrap cannot run here."""


def sandbox_mode() -> str:
    mode = str(getattr(settings, "MEV_LOCAL_SANDBOX", "auto")).strip().lower()
    if mode not in MODES:
        raise SandboxUnavailable(f"MEV_LOCAL_SANDBOX must be one of {', '.join(MODES)}, not {mode!r}.")
    return mode


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def python_dirs() -> list[str]:
    """The directories the tools' interpreter needs: the virtual environment and the installation it
    was made from (both may be outside /usr, e.g. pyenv or /opt)."""
    candidates = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
                  os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))]
    found: list[str] = []
    for candidate in candidates:
        for path in dict.fromkeys((os.path.abspath(candidate), os.path.realpath(candidate))):
            if os.path.isdir(path) and not _inside(path, _SYSTEM_DIRS) and not _inside(path, found):
                found = [p for p in found if not _inside(p, [path])] + [path]
    return found


def _system_args(*, network: bool) -> list[str]:
    args: list[str] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in _ETC_ALWAYS + (_ETC_NETWORK if network else ()):
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _namespace_args(*, network: bool) -> list[str]:
    # --unshare-all includes the network; --share-net gives it back. --disable-userns keeps the tool from
    # making namespaces of its own (kernel attack surface); no capabilities are kept.
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
    return args + (["--share-net"] if network else [])


def _bwrap_path() -> str | None:
    return shutil.which(BWRAP)


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot confine tools here, or None when it can. Probed once per process (and
    bubblewrap path): the Python of the tools is started in a sandbox like a job's."""
    bwrap = _bwrap_path()
    if bwrap is None:
        return f"the program {BWRAP!r} was not found (install the Debian package bubblewrap)"
    with _lock:
        if bwrap in _probe_results:
            return _probe_results[bwrap]
    try:
        with tempfile.TemporaryDirectory(prefix="mev-sandbox-probe-") as scratch:
            # A job's command line exactly, with an empty bundle and working directory.
            argv = bwrap_argv(workdir=Path(scratch), bundle_dir=Path(scratch), network=False)
            probe = subprocess.run([*argv, sys.executable, "-I", "-S", "-c", "pass"],  # noqa: S603
                                   env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=_PROBE_TIMEOUT_SECONDS, check=False)
        problem = None if probe.returncode == 0 else (
            f"a test run failed (exit code {probe.returncode}): {probe.stderr.strip()[-500:] or 'no message'}")
    except (OSError, subprocess.TimeoutExpired, SandboxUnavailable) as exc:
        problem = f"a test run could not be made: {exc}"
    with _lock:
        _probe_results[bwrap] = problem
    return problem


def use_bwrap() -> bool:
    """Whether the next local job runs confined; raises SandboxUnavailable when it must but cannot."""
    global _warned
    mode = sandbox_mode()
    if mode == "none":
        return False
    problem = bwrap_problem()
    if problem is None:
        return True
    if mode == "bwrap":
        raise SandboxUnavailable(
            f"Local tools must run in a sandbox (MEV_LOCAL_SANDBOX=bwrap), but bubblewrap cannot run: {problem}.")
    with _lock:
        first, _warned = not _warned, True
    if first:
        logger.warning("Local tools run WITHOUT a sandbox (MEV_LOCAL_SANDBOX=auto): %s. They can read what the "
                       "worker's user can read and reach the network.", problem)
    return False


def operation_wants_network(bundle_dir: Path) -> bool:
    """The spec's optional `"network": true` (checked at ingestion), read from the immutable bundle copy.
    Anything unreadable means no network."""
    try:
        document = json.loads((Path(bundle_dir) / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("network") is True


def _bind(option: str, path: Path) -> list[str]:
    """Bind `path` at its own name, and at its resolved name too when a symlink is on the way."""
    given, real = os.path.abspath(path), os.path.realpath(path)
    args = [option, real, given]
    return args + ([option, real, real] if real != given else [])


def bwrap_argv(*, workdir: Path, bundle_dir: Path, network: bool) -> list[str]:
    """The bubblewrap command line that confines a tool to this job (the tool's argv follows it)."""
    bwrap = _bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(f"the program {BWRAP!r} was not found")
    workdir = Path(workdir)
    private_tmp, private_shm = workdir / PRIVATE_TMP, workdir / PRIVATE_SHM
    private_tmp.mkdir(parents=True, exist_ok=True)
    private_shm.mkdir(parents=True, exist_ok=True)
    args = [bwrap, *_namespace_args(network=network), *_system_args(network=network)]
    # /tmp first: the job's folders may live under the host's /tmp and are mounted inside it.
    args += ["--bind", str(private_tmp.resolve()), "/tmp"]  # noqa: S108  (the sandbox's own /tmp)
    args += ["--bind", str(private_shm.resolve()), "/dev/shm"]  # noqa: S108
    # After /tmp too: the Python installation may live under the host's /tmp (a checkout there).
    for path in python_dirs():
        args += ["--ro-bind", path, path]
    # The tools import the `_common/` helpers copied beside the bundle (`<operation>/bundle`, `<operation>/_common`).
    bundle_dir = Path(bundle_dir)
    args += _bind("--ro-bind", bundle_dir)
    if (bundle_dir.parent / COMMON_DIR).is_dir():
        args += _bind("--ro-bind", bundle_dir.parent / COMMON_DIR)
    args += _bind("--bind", workdir)
    if (workdir / INPUTS_DIR).is_dir():
        args += _bind("--ro-bind", workdir / INPUTS_DIR)
    # Last: the sandbox's root and /dev are in-memory file systems; read-only, they cannot be filled.
    return args + ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", os.path.abspath(workdir), "--"]


def reset_for_tests() -> None:
    """Forget the probe results and the warning (tests change the bubblewrap path and the mode)."""
    global _warned
    with _lock:
        _probe_results.clear()
        _warned = False
