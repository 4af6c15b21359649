"""Numeric flags of `vigil`: NaN, infinities, negatives and overflowing integers are a usage
error (argparse's, exit 2; the grpc_health_probe-style commands exit 1), checked before anything
is dialled: no traceback, no hang on a NaN deadline, no protobuf "Value out of range"."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.cli import main
from tests.conftest import REPO, python_env

HUGE = "99999999999999999999"
# A port nothing listens on: a flag that slipped through would dial it and fail differently.
DEAD = ["--address", "127.0.0.1:9", "--token", "t"]


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["runs", "list", "--timeout", "nan"], "--timeout"),
        (["runs", "list", "--timeout", "inf"], "--timeout"),
        (["runs", "list", "--timeout", "-1"], "--timeout"),
        (["runs", "list", "--timeout", "0"], "--timeout"),
        (["runs", "list", "--timeout", "1e400"], "--timeout"),
        (["runs", "get", "r1", "--timeout", "1e9"], "--timeout"),
        (["ctl", "--timeout", "NaN", "status"], "--timeout"),
        (["runs", "list", "--limit", HUGE], "--limit"),
        (["runs", "list", "--limit", "0"], "--limit"),
        (["runs", "list", "--page-size", "1e3"], "--limit"),
        (["runs", "start", "wf", "--priority", HUGE], "--priority"),
        (["runs", "start", "wf", "--priority", "-" + HUGE], "--priority"),
        (["ctl", "tail", "workflow", "-n", HUGE], "--lines"),
        (["ctl", "tail", "workflow", "-n", "-1"], "--lines"),
        (["ctl", "restart", "workflow", "--replica", HUGE], "--replica"),
        (["ctl", "stop", "workflow", "--replica", "٣"], "--replica"),
    ],
)
def test_a_bad_number_is_a_usage_error_naming_the_flag(
    argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, *DEAD])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("vigil ") and ": error: argument " in last and flag in last, err


@pytest.mark.parametrize(
    "flags", [["-rpc-timeout", "nan"], ["-rpc-timeout", HUGE + "h"], ["-connect-timeout", "0s"]]
)
def test_probe_durations_are_bounded_with_its_own_exit_code(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["probe", "-addr", "127.0.0.1:9", *flags])
    assert exited.value.code == 1  # grpc_health_probe's "bad arguments"
    assert "invalid duration" in capsys.readouterr().err


def test_good_numbers_still_parse() -> None:
    from services.cli._main import parser

    args = parser().parse_args(["runs", "start", "wf", "--priority", "-5", "--timeout", "2.5"])
    assert (args.priority, args.timeout) == (-5, 2.5)
    args = parser().parse_args(["ctl", "tail", "workflow", "-n", "10000"])
    assert args.lines == 10000


def test_as_a_process_the_error_is_one_line_and_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "runs", "list", "--timeout", "nan", *DEAD],
        cwd=REPO, env=python_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("vigil runs list: error: argument --timeout")
