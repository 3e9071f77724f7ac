"""connectors.paging: the one rule that ends every vendor listing (the vendors' own tests show it per vendor)."""

import pytest

from connectors.limits import PAGE_SLACK, page_ceiling
from connectors.paging import Listing, PagingError, record_id

WHERE = "jira: GET https://x.test/search"


def listing(max_pages: int = 100) -> Listing:
    return Listing(WHERE, max_pages, record_id("id"), noun="issues")


@pytest.mark.parametrize("total, page_size, expected", [
    (None, 100, 50), (-1, 100, 50), (0, 100, PAGE_SLACK), (1, 100, 2 + PAGE_SLACK), (250, 100, 6 + PAGE_SLACK),
    (1_000_000, 100, 50),
])  # fmt: skip
def test_the_ceiling_is_max_pages_or_twice_what_the_vendors_total_needs(total, page_size, expected):
    assert page_ceiling(50, total, page_size) == expected


def test_pages_of_new_records_go_on_to_the_ceiling():
    pages = listing(max_pages=3)
    for number in range(3):
        pages.read([{"id": 10 * number + n} for n in range(5)])
        if number < 2:
            pages.next_page()
    with pytest.raises(PagingError, match=r"still promises more after 3 pages of 15 issues, the most one listing may "
                                          r"take \(raise limits\.max_pages"):  # fmt: skip
        pages.next_page()


def test_a_record_read_again_on_a_page_with_new_ones_is_no_stop():
    pages = listing()
    pages.read([{"id": 1}, {"id": 2}])
    pages.next_page()
    pages.read([{"id": 2}, {"id": 3}])  # a record that moved while the listing was read (offset paging)
    pages.next_page()


@pytest.mark.parametrize("second, said", [
    ([{"id": 1}, {"id": 2}], "page 2 repeated page 1"),
    ([{"id": 2}, {"id": 1}], r"page 2 held only issues read before \(2\)"),
    ([], "page 2 was empty"),
])  # fmt: skip
def test_a_page_with_nothing_new_stops_when_another_is_promised(second, said):
    pages = listing()
    pages.read([{"id": 1}, {"id": 2}])
    pages.next_page()
    pages.read(second)
    with pytest.raises(PagingError, match=rf"^{WHERE}: {said}, yet the vendor promises another: the listing does "
                                          "not advance; stopped$"):  # fmt: skip
        pages.next_page()


def test_records_without_a_key_count_as_new_and_a_total_that_is_no_count_is_ignored():
    pages = listing(max_pages=5)
    pages.total(True, 100)
    pages.total("12", 100)
    assert pages.ceiling == 5
    for _ in range(4):
        pages.read([{"name": "no id"}, "not a record"])
        pages.next_page()
