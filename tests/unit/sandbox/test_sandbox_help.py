"""`songqueue sandbox --help` names the command it is run as and every gateway it stands in for."""

from __future__ import annotations

from sandbox.server import build_parser


def test_help_names_the_command_and_what_it_serves() -> None:
    text = " ".join(build_parser().format_help().split())
    assert text.startswith("usage: songqueue sandbox")
    for served in ("Udio", "302.ai", "openai-hk", "Suno", "MiniMax"):
        assert served in text
    assert "Udio-style" not in text
