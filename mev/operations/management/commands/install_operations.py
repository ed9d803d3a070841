"""Ingest every built-in bundle under operations/ (idempotent: unchanged bundles make no new version)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mev.operations.ingestion import COMMON_DIR, SPEC_FILE, IngestionError
from mev.operations.services import operation_ingest_folder


class Command(BaseCommand):
    help = "Ingest every folder under operations/ that has an operation_spec.json."

    def add_arguments(self, parser):
        parser.add_argument("--root", default=str(Path(settings.BASE_DIR) / "operations"),
                            help="the folder holding one sub-folder per operation")
        parser.add_argument("--strict", action="store_true", help="exit non-zero if any bundle fails")

    def handle(self, *args, **options):
        root = Path(options["root"])
        if not root.is_dir():
            raise CommandError(f"{root} is not a directory")
        categories_file = root / "categories.json"
        failures = 0
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if folder.name == COMMON_DIR or folder.name.startswith((".", "_")) or not (folder / SPEC_FILE).is_file():
                continue
            try:
                operation, created = operation_ingest_folder(folder=folder, categories_file=categories_file)
            except IngestionError as exc:
                failures += 1
                self.stderr.write(f"{folder.name}: not ingested:\n  " + "\n  ".join(exc.messages))
                continue
            verb = "installed" if created else "unchanged"
            self.stdout.write(f"{folder.name}: {verb} {operation.name!r} ({operation.id})")
        if failures and options["strict"]:
            raise CommandError(f"{failures} operation(s) failed")
