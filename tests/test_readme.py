"""The README's generated tables are the code's vocabularies, not copies that drift."""

from pathlib import Path

import yaml

from connectors.files.read import LINE_REJECTIONS
from connectors.limits import Limits
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


def test_readme_bad_input_limits_are_the_defaults_of_the_code():
    section = README.read_text(encoding="utf-8").split("## Bad input\n", 1)[1].split("\n## ", 1)[0]
    example = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert Limits(**example["sources"]["jira"]["limits"]) == Limits()
    defaults = Limits()
    for cell in (f"| {defaults.max_pages:,} |", f"| {defaults.request_deadline_seconds:g} s |",
                 f"| {defaults.time_budget_minutes:g} min |", f"| {defaults.max_body_mb} MB |"):  # fmt: skip
        assert cell in section
