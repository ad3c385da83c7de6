from rollmatch.progress import ON_A_TERMINAL, for_many, progress_bar, write_line


def test_a_bar_shows_when_asked_and_only_for_many_items(capsys):
    assert for_many(ON_A_TERMINAL, 1) is False and for_many(ON_A_TERMINAL, 3) is ON_A_TERMINAL
    assert for_many(True, 2) is True and for_many(False, 2) is False
    assert list(progress_bar(["bwv269", "bwv304"], desc="reading", show=True)) == ["bwv269", "bwv304"]
    assert "reading:" in capsys.readouterr().err
    assert list(progress_bar(["bwv269"], desc="reading", show=False)) == ["bwv269"]
    assert capsys.readouterr().err == ""


def test_a_line_printed_under_a_bar_reaches_stdout_whole(capsys):
    with progress_bar(desc="scoring", total=2, show=True) as bar:
        write_line("bwv269.mxl  GOOD")
        bar.update()
    out = capsys.readouterr()
    assert out.out == "bwv269.mxl  GOOD\n" and "scoring:" in out.err
