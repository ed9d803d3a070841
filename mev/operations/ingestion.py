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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings

from mev.operations.attribute_types import SpecError
from mev.operations.spec import OperationSpec, parse_operation_spec

SPEC_FILE = "operation_spec.json"
OPERATION_RESOURCES_FILE = "operation_resources.json"
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


@dataclass(frozen=True)
class BundledFile:
    """One entry of `operation_resources.json`: a file of the bundle offered for one input key."""

    input_key: str
    name: str
    path: str  # relative to the bundle folder, checked to stay inside it
    resource_type: str


@dataclass
class Bundle:
    spec: OperationSpec
    source_dir: Path
    content_hash: str
    common_dir: Path | None
    operation_resources: list[BundledFile] = field(default_factory=list)


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
    operation_resources = read_operation_resources(folder, document)
    common = folder.parent / COMMON_DIR if with_common else None
    common = common if common is not None and common.is_dir() else None
    return Bundle(spec=spec, source_dir=folder, content_hash=content_hash(folder, common), common_dir=common,
                  operation_resources=operation_resources)


def read_operation_resources(folder: Path, document: dict[str, Any]) -> list[BundledFile]:
    """Parse the optional `operation_resources.json`: `{"<input key>": [{name, path, resource_type}]}`.

    Each key must be an `OperationDataResource` input of the spec, each path a file inside the
    bundle, and each type the input's `resource_type` (or any type when that is `*`).
    """
    path = folder / OPERATION_RESOURCES_FILE
    if not path.is_file():
        return []
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestionError(f"{OPERATION_RESOURCES_FILE} is not valid JSON: {exc}") from exc
    if not isinstance(mapping, dict):
        raise IngestionError(f"{OPERATION_RESOURCES_FILE} must be an object keyed by input key.")
    inputs = document.get("inputs") if isinstance(document.get("inputs"), dict) else {}
    root = folder.resolve()
    problems: list[str] = []
    found: list[BundledFile] = []
    for key, entries in mapping.items():
        where = f"{OPERATION_RESOURCES_FILE}: {key}"
        spec = (inputs.get(key) or {}).get("spec") or {}
        if spec.get("attribute_type") != "OperationDataResource":
            problems.append(f"{where}: not an input of type OperationDataResource")
            continue
        if not isinstance(entries, list):
            problems.append(f"{where}: must be a list of {{name, path, resource_type}}")
            continue
        names: set[str] = set()
        for index, entry in enumerate(entries):
            at = f"{where}.{index}"
            if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k].strip()
                                                      for k in ("name", "path", "resource_type")):
                problems.append(f"{at}: name, path and resource_type are required strings")
                continue
            name, relative, resource_type = entry["name"].strip()[:255], entry["path"], entry["resource_type"]
            target = (root / relative).resolve()
            if Path(relative).is_absolute() or root not in target.parents or not target.is_file():
                problems.append(f"{at}.path: {relative!r} is not a file inside the bundle")
            if not _is_known_resource_type(resource_type):
                problems.append(f"{at}.resource_type: unknown resource type: {resource_type!r}")
            elif spec.get("resource_type") not in ("*", resource_type):
                problems.append(f"{at}.resource_type: the input {key} accepts {spec.get('resource_type')}, "
                                f"not {resource_type}")
            if name in names:
                problems.append(f"{at}.name: {name!r} is listed twice for this input")
            names.add(name)
            found.append(BundledFile(input_key=key, name=name, path=target.relative_to(root).as_posix()
                                     if root in target.parents else relative, resource_type=resource_type))
    if problems:
        raise IngestionError(problems)
    return found


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
