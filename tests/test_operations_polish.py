"""Operations polish (issue 16): a mistyped command says what was meant."""

from __future__ import annotations

import pytest

from sqlgate.cli import main


@pytest.mark.parametrize(("typed", "meant"), [("server", "serve"), ("helth", "health"), ("migrat", "migrate")])
def test_mistyped_command_says_did_you_mean(typed: str, meant: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([typed]) == 2
    err = capsys.readouterr().err
    assert f"unknown command '{typed}'" in err and f"did you mean `sqlgate {meant}`?" in err


def test_unknown_word_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["xyzzy"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'xyzzy'" in err and "serve" in err and "health" in err
