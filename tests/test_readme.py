"""The README's metric table is the code's metric dictionary, not a copy that drifts."""

from pathlib import Path

from scoring.dictionary import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_metric_table_is_generated_from_the_dictionary():
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- metric-dictionary:start -->\n", 1)[1].split("<!-- metric-dictionary:end -->", 1)[0]
    assert block.strip() == markdown_table().strip(), "regenerate the table with scoring.dictionary.markdown_table()"
