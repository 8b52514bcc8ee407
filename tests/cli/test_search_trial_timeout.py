"""`metaloss search --trial-timeout`: refusals with exit code 2, and its default per mode."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from metaloss.cli import main
from metaloss.cli.search import DISTRIBUTED_TRIAL_TIMEOUT, _trial_timeout


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_bad_trial_timeout_is_a_usage_error_naming_the_option(tmp_path, value):
    result = CliRunner().invoke(
        main, ["search", "--trial-timeout", value, "--directory", str(tmp_path / "s")]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--trial-timeout'" in result.output
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_the_default_is_off_alone_and_thirty_minutes_in_a_cluster(monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    assert _trial_timeout(None) is None
    assert _trial_timeout(0.0) is None  # 0 turns it off
    assert _trial_timeout(12.5) == 12.5
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    assert _trial_timeout(None) == DISTRIBUTED_TRIAL_TIMEOUT == 1800.0
    assert _trial_timeout(0.0) is None
    assert _trial_timeout(60.0) == 60.0


def test_the_help_documents_the_option():
    result = CliRunner().invoke(main, ["search", "--help"])
    assert result.exit_code == 0
    help_text = " ".join(result.output.split())
    assert "--trial-timeout SECONDS" in help_text
    assert "0 turns it off" in help_text and "1800 (30 minutes)" in help_text
