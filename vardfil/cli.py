"""The ``vardfil`` command line. The contracts of its subcommands are fixed (the region's tooling
calls them exactly): ``vardfil validate PATH [--received-at ISO8601] [--reference DIR]`` prints the
kvittens JSON and records nothing; exit 0 for GODKAND or DELVIS_GODKAND, 1 for AVVISAD, 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command was called with arguments it cannot work with (exit 2)."""


def _instant(text: str) -> dt.datetime:
    from validators.window import parse_instant

    try:
        return parse_instant(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant with offset: {text!r} ({e})") from None


def _reference(path: Path | None):
    from filespec import ReferenceDataError, load_reference
    from vardfil.settings import load_settings

    root = path or load_settings().reference
    try:
        return load_reference(root)
    except ReferenceDataError as e:
        raise UsageError(str(e)) from None


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate one file and print its kvittens; nothing is recorded."""
    from validators import validate_file, write_findings_csv

    path: Path = args.path
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    received_at = args.received_at or dt.datetime.now(dt.timezone.utc)
    result = validate_file(path, file_name=path.name, received_at=received_at,
                           reference=_reference(args.reference))
    if args.findings_csv:
        write_findings_csv(result.findings, args.findings_csv)
    json.dump(result.kvittens.to_dict(), sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return EXIT_REJECTED if result.kvittens.status.value == "AVVISAD" else EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    """Run the main job on the sample month and say where its outputs are."""
    from vardfil.sample import run_sample_month

    return run_sample_month(out=args.out)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    ap = argparse.ArgumentParser(prog="vardfil", description="Monthly visit files of VGR's care units.")
    sub = ap.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="validate one file and print its kvittens (records nothing)")
    v.add_argument("path", type=Path, metavar="PATH")
    v.add_argument("--received-at", type=_instant, metavar="ISO8601",
                   help="arrival instant with offset (default: now)")
    v.add_argument("--reference", type=Path, metavar="DIR",
                   help="reference data folder (default: the sample reference data)")
    v.add_argument("--findings-csv", type=Path, metavar="PATH",
                   help="also write the full findings list as CSV here")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("sample", help="run the sample month with embedded defaults")
    s.add_argument("--out", type=Path, default=None, help="output folder (default: $VARDFIL_HOME/sample)")
    s.set_defaults(func=cmd_sample)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vardfil`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"vardfil: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
