"""The README's generated tables are the code's vocabularies, not copies that drift."""

from pathlib import Path

from connectors.files.read import LINE_REJECTIONS
from connectors.records import rejection_reasons, rejection_table
from scoring.dictionary import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def generated_block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"<!-- {name}:start -->\n", 1)[1].split(f"<!-- {name}:end -->", 1)[0].strip()


def test_readme_metric_table_is_generated_from_the_dictionary():
    assert generated_block("metric-dictionary") == markdown_table().strip(), \
        "regenerate the table with scoring.dictionary.markdown_table()"


def test_readme_rejection_reasons_are_generated_from_the_normaliser_and_the_file_reader():
    expected = rejection_table(rejection_reasons() + LINE_REJECTIONS)
    assert generated_block("rejection-reasons") == expected, \
        "regenerate the table with connectors.records.rejection_table(rejection_reasons() + LINE_REJECTIONS)"
