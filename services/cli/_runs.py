"""``vigil runs ...`` and ``vigil workflows``: the workflow service from the command line.

Exit codes: 0 success; 1 a run followed to its end (``--wait``, ``watch``) did not succeed;
2 bad usage, no token, or a failed call (the error is one line on stderr).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from services.cli._args import INT32_MAX, int_in, seconds
from services.cli._output import as_dict, emit_json, enum_name, progress, table, when
from services.cli._settings import Settings, TlsFlags
from services.workflow.client import WorkflowClient, pb
from vigil.security.v1 import security_pb2 as _sec

__all__ = ["add_runs_commands", "run_runs_command"]

EXIT_OK, EXIT_RUN_FAILED, EXIT_ERROR = 0, 1, 2
MAX_PAGE = 1000
"""Largest ``--limit`` (the workflow service's largest ListRuns page)."""
_TERMINAL = {pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED, pb.RUN_STATE_CANCELLED, pb.RUN_STATE_TIMED_OUT}
_STATES = [pb.RunState.Name(v).removeprefix("RUN_STATE_") for v in pb.RunState.values() if v]


def _state(value: int) -> str:
    return enum_name(pb.RunState, value, "RUN_STATE_")


def _seconds(duration: Any) -> str:
    return f"{duration.seconds + duration.nanos / 1e9:.3f}s"


def parse_params(text: str) -> dict[str, Any]:
    """``--params`` (JSON text, or ``@FILE`` holding it) as a JSON object, or ValueError saying
    what is wrong with it."""
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"--params {text}: cannot read the file: {exc}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--params is not valid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--params must be a JSON object, got a JSON {type(value).__name__}")
    return value


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--label must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def run_summary(run: pb.Run) -> str:
    """What ``vigil runs get`` prints: the run's fields, then its steps."""
    lines = [
        f"run:        {run.run_id}",
        f"workflow:   {run.workflow}",
        f"state:      {_state(run.state)}",
        f"principal:  {run.principal}",
        f"attempts:   {run.attempts}",
        f"created:    {when(run.created_at)}",
        f"started:    {when(run.started_at)}",
        f"finished:   {when(run.finished_at)}",
        f"trace id:   {run.trace_id or '-'}",
    ]
    if run.retry_of:
        lines.append(f"retry of:   {run.retry_of}{' (resumed)' if run.resumed else ''}")
    if run.fallback_applied:
        lines.append(f"fallback:   {run.fallback}")
    if run.HasField("error"):
        lines.append(
            f"error:      {enum_name(pb.ErrorCategory, run.error.category, 'ERROR_CATEGORY_')}: "
            f"{run.error.message}"
        )
    if run.state == pb.RUN_STATE_SUCCEEDED:
        lines.append(f"result:     {json.dumps(json_format.MessageToDict(run.result))}")
    if run.steps:
        rows = [
            (
                s.name,
                "done" if s.completed else ("failed" if s.HasField("error") else "started"),
                s.executions,
                _seconds(s.duration) if s.HasField("duration") else "-",
                s.error.message if s.HasField("error") else "",
            )
            for s in run.steps
        ]
        lines += ["", table(("STEP", "STATUS", "EXECUTIONS", "DURATION", "ERROR"), rows)]
    return "\n".join(lines)


def history_lines(events: list[pb.HistoryEvent]) -> str:
    """A run's history like ``temporal workflow show``: id, time, type, details."""
    rows = []
    for e in events:
        details = []
        if e.attempt:
            details.append(f"attempt={e.attempt}")
        if e.step:
            details.append(f"step={e.step}")
        if e.state:
            details.append(f"state={_state(e.state)}")
        if e.HasField("duration"):
            details.append(f"duration={_seconds(e.duration)}")
        if e.HasField("retry_delay"):
            details.append(f"backoff={_seconds(e.retry_delay)}")
        if e.fallback:
            details.append(f"fallback={e.fallback}")
        if e.HasField("error"):
            details.append(f"error={e.error.code}: {e.error.message}")
        rows.append(
            (
                e.event_id,
                when(e.time),
                enum_name(pb.HistoryEventType, e.type, "HISTORY_EVENT_TYPE_"),
                " ".join(details),
            )
        )
    return table(("ID", "TIME", "TYPE", "DETAILS"), rows)


async def _follow(client: WorkflowClient, run_id: str) -> pb.Run:
    """Follow a run to its end, printing each change to stderr (also with --json: stdout stays
    the result alone); returns the final run."""
    last: pb.Run | None = None
    async for event in client.watch_run(run_id):
        kind = enum_name(pb.RunEventType, event.type, "RUN_EVENT_TYPE_").lower().replace("_", " ")
        extra = f" step={event.step}" if event.step else ""
        if event.HasField("error"):
            extra += f" error={event.error.message}"
        progress(f"... {kind}: {_state(event.run.state)} attempt={event.run.attempts}{extra}")
        last = event.run
    if last is None or last.state not in _TERMINAL:  # the stream broke off early
        return await client.get_run(run_id)
    return last


def _print_run(args: argparse.Namespace, run: pb.Run) -> None:
    if args.json:
        emit_json(run)
    else:
        print(run_summary(run))


async def _start_like(args: argparse.Namespace, client: WorkflowClient, run: pb.Run, created: bool) -> int:
    progress(f"run {run.run_id} {'created' if created else 'already exists'}: {_state(run.state)}")
    if args.wait and run.state not in _TERMINAL:
        run = await _follow(client, run.run_id)
    _print_run(args, run)
    return EXIT_OK if not args.wait or run.state == pb.RUN_STATE_SUCCEEDED else EXIT_RUN_FAILED


async def _workflows(args: argparse.Namespace, client: WorkflowClient) -> int:
    infos = await client.list_workflows()
    if args.json:
        emit_json({"workflows": [as_dict(i) for i in infos]})
        return EXIT_OK
    rows = [
        (
            w.name,
            enum_name(_sec.SecurityLevel, w.required_level, "SECURITY_LEVEL_"),
            _seconds(w.timeout),
            w.retry.max_attempts,
            enum_name(pb.BreakerState, w.breaker_state, "BREAKER_STATE_"),
            f"{w.stats.started}/{w.stats.succeeded}/{w.stats.failed}",
            w.description,
        )
        for w in infos
    ]
    header = ("NAME", "LEVEL", "TIMEOUT", "ATTEMPTS", "BREAKER", "RUNS/OK/FAILED", "DESCRIPTION")
    print(table(header, rows))
    return EXIT_OK


async def _start(args: argparse.Namespace, client: WorkflowClient) -> int:
    run, created = await client.start_run(
        args.workflow,
        args.params_object,
        idempotency_key=args.idempotency_key,
        labels=args.labels_object,
        priority=args.priority,
    )
    return await _start_like(args, client, run, created)


async def _retry(args: argparse.Namespace, client: WorkflowClient) -> int:
    run, created = await client.retry_run(args.run_id, resume=args.resume)
    return await _start_like(args, client, run, created)


async def _get(args: argparse.Namespace, client: WorkflowClient) -> int:
    _print_run(args, await client.get_run(args.run_id))
    return EXIT_OK


async def _history(args: argparse.Namespace, client: WorkflowClient) -> int:
    reply = await client.get_run_history(args.run_id)
    if args.json:
        emit_json(reply)
    else:
        run = reply.run
        print(
            f"run {run.run_id} ({run.workflow}) started by {run.principal}: {_state(run.state)}"
            f"  trace {run.trace_id or '-'}"
        )
        print(history_lines(list(reply.events)))
    return EXIT_OK


async def _watch(args: argparse.Namespace, client: WorkflowClient) -> int:
    run = await _follow(client, args.run_id)
    _print_run(args, run)
    return EXIT_OK if run.state == pb.RUN_STATE_SUCCEEDED else EXIT_RUN_FAILED


async def _cancel(args: argparse.Namespace, client: WorkflowClient) -> int:
    _print_run(args, await client.cancel_run(args.run_id, args.reason))
    return EXIT_OK


async def _list(args: argparse.Namespace, client: WorkflowClient) -> int:
    states = [pb.RunState.Value(f"RUN_STATE_{s}") for s in args.state]
    runs, token = await client.list_runs(
        workflow=args.workflow,
        states=states,
        labels=args.labels_object,
        page_size=args.limit,
        page_token=args.page_token,
    )
    if args.json:
        emit_json({"runs": [as_dict(r) for r in runs], "nextPageToken": token})
        return EXIT_OK
    rows = [
        (r.run_id, r.workflow, _state(r.state), r.attempts, when(r.created_at), r.principal) for r in runs
    ]
    print(table(("RUN_ID", "WORKFLOW", "STATE", "ATTEMPTS", "CREATED", "PRINCIPAL"), rows))
    if token:
        progress(f"more: --page-token {token}")
    return EXIT_OK


_COMMANDS = {
    "workflows": _workflows,
    "list": _list,
    "get": _get,
    "history": _history,
    "watch": _watch,
    "start": _start,
    "cancel": _cancel,
    "retry": _retry,
}


async def run_runs_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``vigil runs COMMAND`` or ``vigil workflows``; returns the exit code."""
    command = args.runs_command if args.command == "runs" else "workflows"
    # Bad input is refused before anything is dialled or a token is looked for.
    args.params_object = parse_params(args.params) if command == "start" else {}
    args.labels_object = _labels(getattr(args, "label", []))
    address = args.address or settings.address("workflow")
    tls = settings.client_tls("workflow", tls_flags(args))
    token = settings.token(args.token, args.token_file)
    timeout_s = args.timeout or CALL_TIMEOUT_S
    async with WorkflowClient(address, token=token, timeout_s=timeout_s, tls=tls) as client:
        return await _COMMANDS[command](args, client)


CALL_TIMEOUT_S = 10.0
"""Deadline of a call when --timeout is not given (ctl's start/stop/restart wait longer)."""

CLIENT_DEFAULTS: dict[str, Any] = {
    "address": None,
    "token": None,
    "token_file": None,
    "timeout": None,
    "json": False,
    "tls": False,
    "tls_ca": None,
    "tls_cert": None,
    "tls_key": None,
    "tls_server_name": None,
}
"""Values of the `client_options` flags when given at no level of the command line."""


def tls_flags(args: argparse.Namespace) -> TlsFlags:
    """The `client_options` TLS flags of a parsed command line."""
    return TlsFlags(args.tls, args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)


def client_options(parser: argparse.ArgumentParser) -> None:
    """Connection flags of the workflow and ctl commands, accepted before or after a subcommand
    (defaults SUPPRESSed so a later level never overwrites an earlier one; see CLIENT_DEFAULTS)."""
    S = argparse.SUPPRESS
    parser.add_argument("--address", default=S, help="workflow host:port (default: from the stack's config)")
    parser.add_argument(
        "--token", default=S, help="bearer token (else --token-file, $VIGIL_TOKEN, .vigil/dev-token)"
    )
    parser.add_argument("--token-file", default=S, help="file holding the bearer token")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=S,
        help="deadline of each call in seconds (10; ctl start/stop/restart: 300)",
    )
    parser.add_argument("--json", action="store_true", default=S, help="print JSON")
    parser.add_argument(
        "--tls", action="store_true", default=S, help="use TLS (system roots unless --tls-ca)"
    )
    parser.add_argument("--tls-ca", default=S, help="CA bundle of the server certificate (implies TLS)")
    parser.add_argument("--tls-cert", default=S, help="client certificate for mTLS (with --tls-key)")
    parser.add_argument("--tls-key", default=S, help="private key of --tls-cert")
    parser.add_argument("--tls-server-name", default=S, help="name checked in the server certificate")


def add_runs_commands(sub: Any) -> None:
    """Register ``runs`` (with its subcommands) and ``workflows`` on the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    client_options(common)
    runs = sub.add_parser(
        "runs",
        parents=[common],
        help="list, inspect, start, cancel and retry runs",
        description="Runs of the workflow service. " + __doc__.split("\n\n")[1],
    )
    rsub = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    lst = rsub.add_parser("list", parents=[common], help="runs, newest first")
    lst.add_argument("--workflow", default="")
    lst.add_argument("--state", action="append", default=[], choices=_STATES, type=str.upper)
    lst.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    lst.add_argument(
        "--limit",
        "--page-size",
        dest="limit",
        type=int_in(1, MAX_PAGE),
        default=20,
        help="page size (1-1000)",
    )
    lst.add_argument("--page-token", default="")
    for name, text in (
        ("get", "one run with its steps (attempts, durations, errors) and trace id"),
        ("history", "a run's event history, oldest first"),
        ("watch", "follow a run until it ends (exit 1 unless it SUCCEEDED)"),
    ):
        rsub.add_parser(name, parents=[common], help=text, description=text).add_argument("run_id")
    start = rsub.add_parser("start", parents=[common], help="start a run")
    start.add_argument("workflow")
    start.add_argument("--params", default="{}", help="params as a JSON object, or @FILE")
    start.add_argument("--label", action="append", default=[], help="KEY=VALUE (repeatable)")
    start.add_argument("--idempotency-key")
    start.add_argument("--priority", type=int_in(-INT32_MAX - 1, INT32_MAX), default=0)
    start.add_argument("--wait", action="store_true", help="show progress until the run ends")
    cancel = rsub.add_parser("cancel", parents=[common], help="cancel a run")
    cancel.add_argument("run_id")
    cancel.add_argument("--reason", default="")
    retry = rsub.add_parser(
        "retry",
        parents=[common],
        help="a new run from a finished run's input",
        description="Start a new run with a finished run's workflow, params and labels.",
    )
    retry.add_argument("run_id")
    retry.add_argument("--resume", action="store_true", help="skip the steps the old run finished")
    retry.add_argument("--wait", action="store_true", help="show progress until the run ends")
    sub.add_parser("workflows", parents=[common], help="registered workflows with policies and counters")
