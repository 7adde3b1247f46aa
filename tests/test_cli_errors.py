"""`salad` tells a user's mistake from a bug: the project's own errors (salad_core.errors) print one line and exit with
code 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from salad_core.cli import main
from salad_core.errors import InputError, SaladError, TrainingError, UnknownNameError
from salad_core.paths import REPO_ROOT
from salad_core.store import Store, StoreBusyError


def test_a_bad_flag_value_is_one_line_and_exit_code_2(tmp_path, capsys):
    db = tmp_path / "store.duckdb"
    assert main(["train", "--preset", "nano", "--alpha", "2", "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "salad train: error: alpha must be in [0, 1], got 2.0"
    assert Store(db).runs().empty  # nothing started


def test_an_unknown_run_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["select", "--from", "train-nowhere", "--db", str(tmp_path / "s.duckdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Training run 'train-nowhere' is not in the store" in err and "Fix:" in err
    assert "Traceback" not in err


def test_a_bug_inside_a_command_keeps_its_traceback(tmp_path):
    """A KeyError is what a bug raises (it used to be printed as one line, exit code 2, the traceback lost)."""
    code = textwrap.dedent(f"""
        import sys
        from salad_core import cli

        def broken(args):
            return {{}}["summary"]

        cli.COMMANDS["runs"] = (broken, *cli.COMMANDS["runs"][1:])
        sys.exit(cli.main(["runs", "--db", {str(tmp_path / "s.duckdb")!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback (most recent call last)" in done.stderr and "in broken" in done.stderr
    assert "KeyError: 'summary'" in done.stderr and "salad runs: error" not in done.stderr


def test_the_family_keeps_the_builtin_types_callers_catch():
    assert issubclass(InputError, ValueError) and issubclass(UnknownNameError, KeyError)
    assert issubclass(StoreBusyError, SaladError) and issubclass(TrainingError, SaladError)
    assert str(UnknownNameError("unknown preset 'x'")) == "unknown preset 'x'"  # not quoted as a KeyError's
    with pytest.raises(KeyError, match="presets: mini"):
        from salad_core.presets import get_preset

        get_preset("huge")
