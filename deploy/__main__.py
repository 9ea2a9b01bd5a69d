"""``python -m deploy build [function ...] [--out build]``, ``python -m deploy explain <function> [module]``
and ``python -m deploy iam`` (the README's table of identities and rights)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.bundle import REPO_ROOT, BuildError, build_function, explain, functions, sha256

IAM_TABLE_PROJECT = "PROJECT"  # the README's table names no real project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build one verified-ready bundle per function")
    build.add_argument("functions", nargs="*", help="default: every functions/<name>/main.py")
    build.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    why = sub.add_parser("explain", help="why a module or distribution is in a bundle")
    why.add_argument("function")
    why.add_argument("module", nargs="?")
    sub.add_parser("iam", help="every identity and its exact rights, as the README's Markdown table")
    args = parser.parse_args(argv)
    try:
        if args.command == "iam":
            from deploy.plan import render_iam_table
            from deploy.spec import build_spec
            from shared.pipeline import load_definition

            sys.stdout.write(render_iam_table(build_spec(load_definition(), IAM_TABLE_PROJECT)))
        elif args.command == "build":
            for name in args.functions or functions():
                zip_path = build_function(name, args.out)
                sys.stdout.write(f"{name}: {zip_path} sha256={sha256(zip_path)[:16]}\n")
        else:
            sys.stdout.write(explain(args.function, args.module) + "\n")
    except BuildError as exc:
        sys.stderr.write(f"build failed: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
