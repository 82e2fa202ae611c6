"""The methods chapter's recipe tables (kdlib.book.recipes): values as written, defaults explicit, ours beside the paper's."""
import re

from kdlib.runs.plan import load_grid
from kdlib.book.recipes import beside_paper, fmt_value, recipe_table
from kdlib.book.rows import paper_tables


def test_values_are_written_as_a_reader_writes_them():
    assert [fmt_value(v) for v in (35, 35.0, 512.0, 0.2, 5e-4, 5e-05, True, "onecycle")] == \
        ["35", "35", "512", "0.2", "0.0005", "5e-05", "yes", "onecycle"]


def test_no_integer_of_any_profile_is_printed_as_n_point_zero():
    grid = load_grid()
    for name, prof in grid["profiles"].items():
        table = recipe_table(prof)
        cells = [str(v) for row in table.drop(columns=[""]).values for v in row]
        assert not [c for c in cells if re.fullmatch(r"\d+\.0", c)], name
        assert table.set_index("").loc["epochs", "teacher"] == str(prof["recipes"]["teacher"]["epochs"])


def test_ours_beside_the_papers_reads_the_profile():
    grid = load_grid()
    paper = grid["profiles"]["paper"]
    t = beside_paper(paper, paper_tables()["recipe"], grid["defaults"]).set_index("")
    assert t.loc["batch size", "this profile"] == "512"
    assert t.loc["epochs", "this profile"] == "35 (teacher), 30 (student)"
    assert t.loc["epochs", "the paper's text"] == "not stated" and "218" in t.loc["epochs", "the paper's public code"]
    assert t.loc["Cutout", "this profile"] == "1 hole of side 16" and t.loc["Cutout", "the paper's text"] == "16 holes"
    assert "mean" in t.loc["flip+crop", "this profile"]  # the paper profile's committed seeds pad with the mean
    assert "black" in beside_paper(grid["profiles"]["quick"], paper_tables()["recipe"]).set_index("").loc[
        "flip+crop", "this profile"]
