"""``python -m deploy build [function ...] [--out build]`` and ``python -m deploy explain <function> [module]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.bundle import REPO_ROOT, BuildError, build_function, explain, functions, sha256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build one verified-ready bundle per function")
    build.add_argument("functions", nargs="*", help="default: every functions/<name>/main.py")
    build.add_argument("--out", type=Path, default=REPO_ROOT / "build")
    why = sub.add_parser("explain", help="why a module or distribution is in a bundle")
    why.add_argument("function")
    why.add_argument("module", nargs="?")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
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
