"""Command line for the workflow service: start, watch, list, cancel.

    python -m services.workflow.cli start echo --params '{"a": 1}' --wait
    python -m services.workflow.cli watch RUN_ID
    python -m services.workflow.cli list --workflow echo --state FAILED
    python -m services.workflow.cli cancel RUN_ID --reason "no longer needed"

The token comes from --token, else $VIGIL_TOKEN, else the file --token-file
(default .vigil/dev-token). Progress goes to stderr, the final run as JSON to stdout.
Exit status: 0 on success (a started run that ends SUCCEEDED with --wait), 1 when the run
ends otherwise, 2 on usage or RPC errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from services.common import VigilError
from services.workflow.client import WorkflowClient, pb

_TERMINAL = {pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED, pb.RUN_STATE_CANCELLED, pb.RUN_STATE_TIMED_OUT}


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if os.environ.get("VIGIL_TOKEN"):
        return os.environ["VIGIL_TOKEN"]
    path = Path(args.token_file)
    return path.read_text().strip() if path.is_file() else None


def _state(value: int) -> str:
    return pb.RunState.Name(value).removeprefix("RUN_STATE_")


def _print_run(run: pb.Run) -> None:
    print(json.dumps(json_format.MessageToDict(run), indent=2))


async def _watch(client: WorkflowClient, run_id: str) -> pb.Run:
    last: pb.Run | None = None
    async for event in client.watch_run(run_id):
        kind = pb.RunEventType.Name(event.type).removeprefix("RUN_EVENT_TYPE_")
        extra = f" step={event.step}" if event.step else ""
        if event.HasField("error"):
            extra += f" error={event.error.message}"
        print(
            f"[{kind}] {event.run.run_id} {_state(event.run.state)} attempt={event.run.attempts}{extra}",
            file=sys.stderr,
        )
        last = event.run
    if last is None or last.state not in _TERMINAL:  # the stream broke off early
        return await client.get_run(run_id)
    return last


async def _main(args: argparse.Namespace) -> int:
    async with WorkflowClient(args.address, token=_token(args), timeout_s=args.timeout) as client:
        if args.command == "start":
            params: dict[str, Any] = json.loads(args.params)
            run, created = await client.start_run(
                args.workflow, params, idempotency_key=args.idempotency_key, priority=args.priority
            )
            print(
                f"run {run.run_id} {'created' if created else 'exists'}: {_state(run.state)}", file=sys.stderr
            )
            if args.wait:
                run = await _watch(client, run.run_id)
            _print_run(run)
            return 0 if not args.wait or run.state == pb.RUN_STATE_SUCCEEDED else 1
        if args.command == "watch":
            run = await _watch(client, args.run_id)
            _print_run(run)
            return 0 if run.state == pb.RUN_STATE_SUCCEEDED else 1
        if args.command == "list":
            states = [pb.RunState.Value(f"RUN_STATE_{s.upper()}") for s in args.state]
            runs, token = await client.list_runs(
                workflow=args.workflow, states=states, page_size=args.page_size, page_token=args.page_token
            )
            for r in runs:
                print(f"{r.run_id}  {r.workflow:<20} {_state(r.state):<10} attempts={r.attempts}")
            if token:
                print(f"next page: --page-token {token}", file=sys.stderr)
            return 0
        run = await client.cancel_run(args.run_id, args.reason)
        _print_run(run)
        return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.workflow.cli", description=__doc__.split("\n")[0])
    p.add_argument("--address", default=os.environ.get("VIGIL_WORKFLOW_ADDRESS", "127.0.0.1:50051"))
    p.add_argument("--token")
    p.add_argument("--token-file", default=".vigil/dev-token")
    p.add_argument("--timeout", type=float, default=10.0, help="deadline of each unary call (s)")
    sub = p.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a run")
    start.add_argument("workflow")
    start.add_argument("--params", default="{}", help="JSON object")
    start.add_argument("--wait", action="store_true", help="follow progress until the run ends")
    start.add_argument("--idempotency-key")
    start.add_argument("--priority", type=int, default=0)
    watch = sub.add_parser("watch", help="follow a run until it ends")
    watch.add_argument("run_id")
    lst = sub.add_parser("list", help="list runs, newest first")
    lst.add_argument("--workflow", default="")
    lst.add_argument("--state", action="append", default=[], help="PENDING, RUNNING, SUCCEEDED, ...")
    lst.add_argument("--page-size", type=int, default=20)
    lst.add_argument("--page-token", default="")
    cancel = sub.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id")
    cancel.add_argument("--reason", default="")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except (VigilError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
