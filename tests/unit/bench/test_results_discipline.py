"""bench/run.py publishes only what anyone can take again, and docs/benchmarks.md is
generated from what it published."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench import harness, run  # noqa: E402


def test_the_page_is_generated_from_the_published_results() -> None:
    block = run.results_block()
    assert block is not None, "bench/results/latest-*.md are missing"
    page = run.PAGE.read_text()
    assert run.render_page(page, block) == page, "run `python bench/run.py --readme`"


def test_a_stale_page_is_seen() -> None:
    page = run.PAGE.read_text()
    stale = run.render_page(page, "an old table")
    assert stale != page and run.render_page(stale, run.results_block() or "") == page


@pytest.mark.parametrize(("subset", "failed", "void", "dirty", "reason"), [
    (True, [], [], "", "a subset (--only)"),
    (False, ["scale"], [], "", "failed: scale"),
    (False, [], ["download"], "", "void (load >= 1.0 at start): download"),
    (False, [], [], " M bench/run.py", "uncommitted changes in the tree"),
])
def test_runs_that_cannot_be_taken_again_are_not_published(subset, failed, void, dirty, reason) -> None:
    assert run.unpublishable(subset, failed, void, dirty) == [reason]


def test_a_complete_run_on_a_clean_quiet_tree_is_published() -> None:
    assert run.unpublishable(False, [], [], "") == []


def test_a_section_started_on_a_busy_machine_says_it_is_void() -> None:
    busy = harness.Section(title="t", setup="s", load_at_start=1.7)
    quiet = harness.Section(title="t", setup="s", load_at_start=0.4)
    assert busy.void and "**Void**" in busy.render() and "load 1.70 at start" in busy.render()
    assert not quiet.void and "Void" not in quiet.render()


def test_a_long_run_is_published_folded_after_the_full_and_quick_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    (tmp_path / "latest-scale-100k.md").write_text("## Benchmark results\n\nthe 100k table\n")
    assert run.results_block() is None, "a long run alone is no page"
    (tmp_path / "latest-full.md").write_text("## Benchmark results\n\nthe full table\n")
    block = run.results_block() or ""
    assert block.index("the full table") < block.index("Latest long run: scale-100k") < block.index("the 100k table")


def test_a_long_run_takes_neither_only_nor_quick(capsys) -> None:
    with pytest.raises(SystemExit):
        run.main(["--long", "scale-100k", "--quick"])
    assert "--long" in capsys.readouterr().err
