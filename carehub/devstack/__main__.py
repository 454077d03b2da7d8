"""Command line: `python -m carehub.devstack run -- CMD [ARGS...]` and `... demo`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from carehub.devstack.runner import demo, run
from carehub.devstack.services import DEFAULT_STATE_DIR, DevstackError, log_to_stderr


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--embedded",
        action="store_true",
        default=os.environ.get("DEVSTACK_EMBEDDED") == "1",
        help="do not use servers on the local default ports: start embedded ones unless "
        "DATABASE_URL/REDIS_URL are set (also: DEVSTACK_EMBEDDED=1)",
    )
    common.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="where embedded servers keep their data (default: %(default)s)",
    )

    parser = argparse.ArgumentParser(
        prog="python -m carehub.devstack",
        description="Run carehub against PostgreSQL and Redis, starting embedded ones if needed.",
    )
    commands = parser.add_subparsers(dest="subcommand", required=True)

    run_parser = commands.add_parser(
        "run", parents=[common], help="run a command with DATABASE_URL and REDIS_URL set"
    )
    run_parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")

    demo_parser = commands.add_parser(
        "demo", parents=[common], help="migrate, seed and run web + worker + scheduler"
    )
    demo_parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT") or 8000),
        help="web port on 127.0.0.1 (default: $PORT or 8000)",
    )
    demo_parser.add_argument("--no-seed", action="store_true", help="skip manage.py seed_demo")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.subcommand == "run":
            command = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not command:
                parser.error("run needs a command: run -- CMD [ARGS...]")
            return run(command, state_dir=args.state_dir, embedded=args.embedded)
        return demo(
            port=args.port, seed=not args.no_seed, state_dir=args.state_dir, embedded=args.embedded
        )
    except DevstackError as exc:
        log_to_stderr(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
