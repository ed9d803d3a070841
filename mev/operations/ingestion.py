"""Turning an operation bundle (a folder, or a git repository at a commit) into a stored Operation.

The bundle is copied under `<MEV_DATA_DIR>/operations/<operation id>/bundle/` at ingestion and never
changed afterwards, so a later edit of the source folder cannot alter a past version (§7.3.14).
Built-in bundles import the shared `operations/_common` package from their parent folder; it is
copied next to the bundle and counts in the content hash.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from mev.operations.attribute_types import SpecError
from mev.operations.spec import OperationSpec, parse_operation_spec

SPEC_FILE = "operation_spec.json"
COMMON_DIR = "_common"
CATEGORIES_FILE = "categories.json"
_IGNORED_PARTS = frozenset({"__pycache__", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
_COMMIT_PATTERN = re.compile(r"[0-9a-fA-F]{7,40}")
_RUNNER_MODULES = ("mev.jobs.runners.local", "mev.jobs.runners.cromwell", "mev.jobs.runners.wes")

# Categories for the catalogue's operation names (operations-catalogue §0.5), used when
# operations/categories.json does not name the operation. Never empty: unknown names get DEFAULT.
DEFAULT_CATEGORY = "Utilities"
CATALOGUE_CATEGORIES: dict[str, list[str]] = {
    "DESeq2": ["Differential expression"],
    "edgeR": ["Differential expression"],
    "Limma/voom": ["Differential expression"],
    "Likelihood ratio test": ["Differential expression"],
    "MAST Single-cell differential expression": ["Differential expression"],
    "Principal component analysis (PCA)": ["Dimension reduction"],
    "SCTK UMAP dimensional reduction": ["Dimension reduction"],
    "Hierarchical clustering (HCL)": ["Clustering"],
    "K-means": ["Clustering"],
    "Seurat clustering": ["Clustering"],
    "SNF (Similarity Network Fusion)": ["Clustering"],
    "RNA-Seq normalization": ["Normalization & batch correction"],
    "ComBat-seq": ["Normalization & batch correction"],
    "Fast Gene Set Enrichment Analysis (fgsea)": ["Gene set enrichment"],
    "topGO": ["Gene set enrichment"],
    "WGCNA": ["Network inference"],
    "PANDA (Regulatory Networks)": ["Network inference"],
    "PUMA (miRNA Regulatory Networks)": ["Network inference"],
    "LIONESS (Regulatory Networks)": ["Network inference"],
    "DRAGON (multi-omic regulatory inference)": ["Network inference"],
    "Expression matrix subset": ["Utilities"],
    "Gene ID Mapping": ["Utilities"],
}


class IngestionError(Exception):
    """Ingestion failed; `messages` name the offending spec keys (`inputs.x.spec.min: required`)."""

    def __init__(self, messages: list[str] | str):
        self.messages = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


@dataclass
class Bundle:
    spec: OperationSpec
    source_dir: Path
    content_hash: str
    common_dir: Path | None


def load_runners() -> frozenset[str]:
    """Import every runner module present, so its `register_runner` line has run."""
    from mev.jobs.runners.base import known_modes

    for module in _RUNNER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return known_modes()


def _is_known_resource_type(code: str) -> bool:
    from mev.resource_types.registry import get_resource_type

    return get_resource_type(code) is not None


def _files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_PARTS)
        for name in sorted(filenames):
            if not name.endswith(".pyc"):
                found.append(Path(dirpath) / name)
    return found


def content_hash(folder: Path, common_dir: Path | None = None) -> str:
    digest = hashlib.sha256()
    for prefix, root in (("bundle", folder), (COMMON_DIR, common_dir)):
        if root is None:
            continue
        for path in _files(root):
            digest.update(f"{prefix}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_bundle(folder: Path, *, with_common: bool) -> Bundle:
    """Parse and check the bundle in `folder`; IngestionError lists every problem."""
    spec_path = folder / SPEC_FILE
    if not spec_path.is_file():
        raise IngestionError(f"{SPEC_FILE} was not found in the repository.")
    try:
        document = json.loads(spec_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestionError(f"{SPEC_FILE} is not valid JSON: {exc}") from exc
    try:
        spec = parse_operation_spec(
            document, known_resource_types=_is_known_resource_type, known_modes=load_runners(), bundle_dir=folder
        )
    except SpecError as exc:
        raise IngestionError([str(problem) for problem in exc.problems]) from exc
    common = folder.parent / COMMON_DIR if with_common else None
    common = common if common is not None and common.is_dir() else None
    return Bundle(spec=spec, source_dir=folder, content_hash=content_hash(folder, common), common_dir=common)


def operations_root() -> Path:
    return Path(getattr(settings, "MEV_OPERATIONS_DIR", settings.DATA_DIR / "operations"))


def copy_bundle(bundle: Bundle, operation_id: uuid.UUID) -> Path:
    """Copy the bundle (and `_common`) to its immutable home; return the bundle directory."""
    home = operations_root() / str(operation_id)
    target = home / "bundle"
    ignore = shutil.ignore_patterns(*_IGNORED_PARTS, "*.pyc")
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree(bundle.source_dir, target, ignore=ignore, symlinks=False)
    if bundle.common_dir is not None:
        shutil.copytree(bundle.common_dir, home / COMMON_DIR, ignore=ignore, symlinks=False)
    return target


def categories_for(name: str, *, categories_file: Path | None = None) -> list[str]:
    mapping: dict[str, Any] = {}
    if categories_file is not None and categories_file.is_file():
        try:
            loaded = json.loads(categories_file.read_text(encoding="utf-8"))
            mapping = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            mapping = {}
    found = mapping.get(name) or CATALOGUE_CATEGORIES.get(name) or [DEFAULT_CATEGORY]
    names = [str(c).strip()[:100] for c in (found if isinstance(found, list) else [found]) if str(c).strip()]
    return list(dict.fromkeys(names)) or [DEFAULT_CATEGORY]


# --------------------------------------------------------------------------------------------------
# git


def check_repository_url(url: Any) -> str:
    """Only https://github.com/<owner>/<repo> (contract §2.8); never a local path or an option."""
    if not isinstance(url, str) or not url.strip():
        raise IngestionError("A repository URL is required.")
    url = url.strip()
    allowed_hosts = set(getattr(settings, "MEV_OPERATION_GIT_HOSTS", ["github.com"]))
    parsed = urlparse(url)
    if parsed.scheme != "https" or parsed.hostname not in allowed_hosts or parsed.username or parsed.password:
        raise IngestionError(f"Only https repositories on {', '.join(sorted(allowed_hosts))} are accepted.")
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) != 2 or any(p.startswith("-") or p in (".", "..") for p in parts):
        raise IngestionError("The repository URL must look like https://github.com/<owner>/<repository>.")
    return url


def repository_name(url: str) -> str:
    name = urlparse(url).path.rstrip("/").split("/")[-1]
    return name[:-4] if name.endswith(".git") else name


def _git(args: list[str], cwd: Path, timeout: float) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_TERMINAL_PROMPT": "0", "HOME": str(cwd)}
    result = subprocess.run(  # noqa: S603  (fixed argv, no shell)
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise IngestionError(f"git {args[0]} failed: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def clone(url: str, commit: str | None, into: Path) -> str:
    """Clone `url` into `into` and check out `commit` (or the default branch); return the full hash."""
    timeout = float(getattr(settings, "MEV_GIT_TIMEOUT_SECONDS", 300))
    if commit and not _COMMIT_PATTERN.fullmatch(commit):
        raise IngestionError("The commit must be a hexadecimal git commit hash.")
    _git(["clone", "--quiet", "--no-recurse-submodules", "--", url, str(into)], into.parent, timeout)
    if commit:
        _git(["checkout", "--quiet", "--detach", commit], into, timeout)
    return _git(["rev-parse", "HEAD"], into, timeout)


def with_clone(url: str, commit: str | None):
    """A temporary clone: returns (tmpdir, checkout path, full commit hash). Caller removes tmpdir."""
    tmp = Path(tempfile.mkdtemp(prefix="mev-ingest-"))
    checkout = tmp / "repo"
    try:
        full_hash = clone(url, commit, checkout)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, checkout, full_hash
