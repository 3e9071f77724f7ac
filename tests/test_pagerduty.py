"""The PagerDuty source against a fake PagerDuty REST API v2 (responses; no network, nothing sleeps)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import responses
from pydantic import ValidationError

from connectors.base import SourceContext, SourceError
from connectors.http import VendorHttpError
from connectors.pagerduty.client import ACCEPT, OFFSET_CAP, ListingTooLarge, PagerDutyClient
from connectors.pagerduty.config import PagerDutyConfig
from connectors.pagerduty.extract import incident_rows
from connectors.pagerduty.source import pagerduty_source
from connectors.records import OUT_OF_RANGE
from connectors.services import ServiceMapping

BASE = "https://pd.test"
URL = f"{BASE}/incidents"
TOKEN = "FAKE_PD_TOKEN_123"
ENV = {"PAGERDUTY_TOKEN": TOKEN}
START, END = pd.Timestamp("2024-03-01T00:00:00Z"), pd.Timestamp("2024-03-02T00:00:00Z")
SERVICES = {
    "checkout": ServiceMapping(pagerduty_services=["PCHK001"]),
    "payments": ServiceMapping(pagerduty_services=["PPAY002"]),
}
FIXTURE = Path(__file__).parent / "data" / "pagerduty" / "incidents.json"


def stamp(value) -> pd.Timestamp | None:
    if not value:
        return None
    value = pd.Timestamp(value)
    return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")


@cache
def moment(value: str | None) -> datetime | None:
    """The fake server's parse (cached: it filters thousands of incidents per request)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class FakePagerDuty:
    """GET /incidents as PagerDuty serves it: since/until on creation (over 180 days refused), date_range=all,
    statuses[], service_ids[], sort_by, limit <= 100, offset + limit <= `cap` (400 beyond), total on request."""

    def __init__(self, incidents, *, cap=OFFSET_CAP, honour_total=True):
        self.incidents = list(incidents)
        self.cap = cap
        self.honour_total = honour_total
        self.requests: list[dict[str, list[str]]] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, request):
        query = parse_qs(urlsplit(request.url).query)
        self.requests.append(query)
        self.headers.append(dict(request.headers))
        if request.headers.get("Authorization") != f"Token token={TOKEN}":
            return 401, {}, json.dumps({"error": {"message": "Unauthorized", "code": 2006}})
        if request.headers.get("Accept") != ACCEPT:
            return 406, {}, "{}"
        limit, offset = int(query.get("limit", ["25"])[0]), int(query.get("offset", ["0"])[0])
        if limit > 100 or offset + limit > self.cap:
            return 400, {}, json.dumps({"error": {"message": "Invalid Input Provided", "code": 2001}})
        items = self.incidents
        if "service_ids[]" in query:
            items = [i for i in items if i["service"]["id"] in query["service_ids[]"]]
        if "statuses[]" in query:
            items = [i for i in items if i["status"] in query["statuses[]"]]
        if query.get("date_range") != ["all"] and "since" in query:
            since, until = moment(query["since"][0]), moment(query["until"][0])
            if until - since > pd.Timedelta(days=180):
                return 400, {}, json.dumps({"error": {"message": "Date range over 6 months", "code": 2001}})
            items = [i for i in items if moment(i.get("created_at")) and since <= moment(i["created_at"]) < until]
        field, order = query.get("sort_by", ["created_at:asc"])[0].split(":")
        floor = datetime.min.replace(tzinfo=UTC)

        def key(incident):
            value = incident.get(field) or (incident.get("last_status_change_at") if field == "resolved_at" else None)
            return moment(value) or floor

        items = sorted(items, key=key, reverse=order == "desc")
        page = items[offset : offset + limit]
        total = len(items) if query.get("total") == ["true"] and self.honour_total else None
        body = {"incidents": page, "limit": limit, "offset": offset, "more": offset + limit < len(items),
                "total": total}  # fmt: skip
        return 200, {"ratelimit-remaining": "900", "ratelimit-reset": "30"}, json.dumps(body)

    def of(self, listing: str) -> list[dict[str, list[str]]]:
        """The requests of one listing: created, created_resolved (the fallback's look-back), resolved or open."""

        def kind(query):
            resolved = query.get("statuses[]") == ["resolved"]
            if "since" in query:
                return "created_resolved" if resolved else "created"
            return "resolved" if resolved else "open"

        return [q for q in self.requests if kind(q) == listing]


def incident(number, created, *, status="resolved", resolved=None, updated=None, service="PCHK001",
             priority="P2", urgency="high", **extra):  # fmt: skip
    created = stamp(created)
    resolved = stamp(resolved) if resolved is not None else (created + pd.Timedelta(minutes=30))
    resolved = resolved if status == "resolved" else None
    changed = resolved or created
    updated = stamp(updated) if updated is not None else changed
    fields = {
        "id": f"Q{number:06d}", "incident_number": number, "title": f"incident {number}", "status": status,
        "urgency": urgency, "priority": {"summary": priority} if priority else None,
        "service": {"id": service, "summary": f"service {service}"},
        "created_at": created.isoformat(), "updated_at": updated.isoformat(),
        "resolved_at": resolved.isoformat() if resolved is not None else None,
        "last_status_change_at": changed.isoformat(), "html_url": f"https://acme.pagerduty.com/incidents/{number}",
    }  # fmt: skip
    return fields | extra


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve(api, incidents, **options) -> FakePagerDuty:
    fake = FakePagerDuty(incidents, **options)
    api.add_callback(responses.GET, URL, callback=fake)
    return fake


def source(services=("PCHK001", "PPAY002"), sleeps=None, mapping=SERVICES, **section):
    config = PagerDutyConfig(base_url=BASE, services=list(services), **section)
    context = SourceContext(Path("."), mapping, ("production",))
    sleep = sleeps.append if sleeps is not None else (lambda seconds: None)
    return pagerduty_source(config, context, ENV, sleep=sleep)


def ids(batch) -> list[str]:
    return sorted(batch.good["source_id"])


LOW_CAP = 1_000  # a vendor whose offset cap is lower than documented: a 400 past it, as past 10,000


def later_resolutions(count=LOW_CAP + 50, service="PCHK001"):
    """Incidents created and resolved after every test window: what a backfill of an old window pages through
    in the resolved listing. Served with `cap=LOW_CAP`, they take that listing past the cap for `service`."""
    after = END + pd.Timedelta(days=10)
    return [incident(500_000 + n, after + pd.Timedelta(minutes=n), service=service) for n in range(count)]


def serve_for_the_fallback(api, incidents) -> FakePagerDuty:
    """A fake whose resolved listing passes its (lower) cap for a single configured service (PCHK001)."""
    return serve(api, [*incidents, *later_resolutions()], cap=LOW_CAP)


# --- requests and pagination --------------------------------------------------------------------------------


def test_requests_carry_the_token_accept_header_time_zone_and_service_ids(api):
    fake = serve(api, [incident(1, "2024-03-01T10:00:00Z")])
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001"] and batch.rejected.empty
    assert batch.cursor == "2024-03-02T00:00:00+00:00"  # read through the window's end (sync_state)
    assert len(fake.requests) == 2  # open, resolved: no creation listing
    for query, headers in zip(fake.requests, fake.headers, strict=True):
        assert headers["Authorization"] == "Token token=FAKE_PD_TOKEN_123"
        assert headers["Accept"] == "application/vnd.pagerduty+json;version=2"
        assert query["service_ids[]"] == ["PCHK001", "PPAY002"]
        assert query["time_zone"] == ["UTC"] and query["limit"] == ["100"]
        assert "since" not in query and "until" not in query
    opened, resolved = fake.requests
    assert (opened["date_range"], opened["statuses[]"]) == (["all"], ["triggered", "acknowledged"])
    assert (resolved["date_range"], resolved["statuses[]"], resolved["sort_by"]) == (
        ["all"], ["resolved"], ["resolved_at:desc"])  # fmt: skip


def test_no_configured_services_lists_every_service(api):
    fake = serve(api, [incident(1, "2024-03-01T10:00:00Z", service="POTHER1")])
    batch = source(services=()).fetch("incidents", START, END)
    assert all("service_ids[]" not in query for query in fake.requests)
    assert list(batch.good["service"]) == ["unmapped"]


def test_pages_of_100_to_the_last_page_and_the_request_pattern_per_window(api):
    in_window = [incident(n, START + pd.Timedelta(minutes=5 * n)) for n in range(250)]  # resolved 30 min later
    older = [incident(1000 + n, START - pd.Timedelta(days=3, minutes=n)) for n in range(150)]
    fake = serve(api, in_window + older)
    batch = source().fetch("incidents", START, END)
    assert len(batch.good) == 250 and batch.rejected.empty
    # newest resolution first: the third page ends before START, so the listing stops there
    resolved = fake.of("resolved")
    assert [(q["limit"], q["offset"]) for q in resolved] == [(["100"], ["0"]), (["100"], ["100"]), (["100"], ["200"])]
    assert all("total" not in q for q in resolved)  # it stops early: the total of every resolution would not help
    assert len(fake.of("open")) == 1
    assert len(fake.requests) == 4  # resolved 3 + open 1, nothing read twice


def test_a_quiet_day_costs_two_requests(api):
    fake = serve(api, [incident(1, START + pd.Timedelta(hours=3)), incident(2, START + pd.Timedelta(hours=4),
                       status="triggered"), *[incident(10 + n, START - pd.Timedelta(days=2, minutes=n))
                                              for n in range(300)]])  # fmt: skip
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001", "Q000002"] and len(fake.requests) == 2


def test_a_400_day_window_is_read_in_creation_chunks_of_at_most_180_days_on_the_fallback(api):
    start, end = pd.Timestamp("2023-01-01T00:00:00Z"), pd.Timestamp("2024-02-05T00:00:00Z")  # 400 days
    marks = [start + pd.Timedelta(days=d) for d in (0, 100, 179, 180, 250, 399)]
    fake = serve_for_the_fallback(api, [incident(n, mark) for n, mark in enumerate(marks)])
    batch = source().fetch("incidents", start, end)
    assert len(batch.good) == len(marks)
    created = fake.of("created")
    ranges = [(stamp(q["since"][0]), stamp(q["until"][0])) for q in created]
    assert ranges == [(start, start + pd.Timedelta(days=180)),
                      (start + pd.Timedelta(days=180), start + pd.Timedelta(days=360)),
                      (start + pd.Timedelta(days=360), end)]  # fmt: skip
    assert all(q["total"] == ["true"] and q["sort_by"] == ["created_at:asc"] for q in created)
    looked_back = [(stamp(q["since"][0]), stamp(q["until"][0])) for q in fake.of("created_resolved")]
    assert looked_back == [(start - pd.Timedelta(days=180), start)]


def test_max_range_days_is_configurable_and_capped_at_180(api):
    fake = serve_for_the_fallback(api, [])
    source(max_range_days=30).fetch("incidents", START - pd.Timedelta(days=90), START)
    assert len(fake.of("created")) == 3
    looked_back = [(stamp(q["since"][0]), stamp(q["until"][0])) for q in fake.of("created_resolved")]
    assert looked_back == [(START - pd.Timedelta(days=120), START - pd.Timedelta(days=90))]
    with pytest.raises(ValidationError):
        PagerDutyConfig(max_range_days=181)


# --- the 10,000 offset cap ----------------------------------------------------------------------------------

MANY = 10_050


def many(count=MANY, **fields):
    return [incident(n, START + pd.Timedelta(seconds=8 * n), **fields) for n in range(count)]


def test_a_creation_listing_over_10000_is_split_in_halves_at_once_when_total_is_given(api):
    fake = serve(api, many())
    client = PagerDutyClient(BASE, TOKEN, sleep=lambda s: None)
    got = client.created(START, END)
    assert len({i["id"] for i in got}) == MANY
    created = fake.requests
    assert created[0]["offset"] == ["0"] and created[0]["total"] == ["true"]
    assert (created[1]["since"], created[1]["until"]) == (["2024-03-01T00:00:00Z"], ["2024-03-01T12:00:00Z"])
    assert len(created) == 1 + 54 + 47  # one request to learn the total, then the halves (5,400 and 4,650)
    assert max(int(q["offset"][0]) + int(q["limit"][0]) for q in created) <= OFFSET_CAP


def test_a_creation_listing_over_10000_without_total_is_split_when_it_reaches_the_cap(api):
    fake = serve(api, many(), honour_total=False)
    got = PagerDutyClient(BASE, TOKEN, sleep=lambda s: None).created(START, END)
    assert len({i["id"] for i in got}) == MANY
    offsets = [int(q["offset"][0]) for q in fake.requests]
    assert offsets[:100] == list(range(0, OFFSET_CAP, 100)) and offsets[100] == 0  # 9,900 was the last, then split
    assert max(int(q["offset"][0]) + int(q["limit"][0]) for q in fake.requests) <= OFFSET_CAP


def test_a_400_past_the_first_page_is_taken_as_the_cap_and_the_range_split(api):
    fake = serve(api, many(1_500), cap=1_000, honour_total=False)  # a vendor whose cap is lower than documented
    got = PagerDutyClient(BASE, TOKEN, sleep=lambda s: None).created(START, END)
    assert len({i["id"] for i in got}) == 1_500
    assert fake.requests[10]["offset"] == ["1000"] and fake.requests[11]["offset"] == ["0"]


def test_more_forever_within_one_second_is_an_error_not_a_truncation(api):
    counter = itertools.count()
    sent = []
    template = incident(0, "2024-03-01T10:00:00Z")

    def forever(request):  # no open incident; resolved (since 10:00, so never stopping) and created: forever
        query = parse_qs(urlsplit(request.url).query)
        if query.get("statuses[]") == ["triggered", "acknowledged"]:
            return 200, {}, json.dumps({"incidents": [], "limit": 100, "offset": 0, "more": False})
        sent.append(("created" if "since" in query else "resolved", int(query["offset"][0]) + int(query["limit"][0])))
        if sent[-1][1] > OFFSET_CAP:
            return 400, {}, "{}"
        page = [template | {"id": f"Q{next(counter):06d}"} for _ in range(100)]
        return 200, {}, json.dumps({"incidents": page, "limit": 100, "offset": 0, "more": True, "total": None})

    api.add_callback(responses.GET, URL, callback=forever)
    with pytest.raises(SourceError) as raised:
        source(services=("PCHK001",)).fetch("incidents", pd.Timestamp("2024-03-01T10:00:00Z"),
                                             pd.Timestamp("2024-03-01T10:00:02Z"))  # fmt: skip
    message = str(raised.value)
    assert isinstance(raised.value, ListingTooLarge)
    assert message.startswith("sources.pagerduty: GET https://pd.test/incidents: more than 10,000 incidents created")
    assert "[2024-03-01T10:00:00Z, 2024-03-01T10:00:01Z)" in message and TOKEN not in message
    assert max(end for _, end in sent) <= OFFSET_CAP
    # the resolved listing to the cap (one service: no split), then the fallback: the whole range, its first second
    assert [listing for listing, _ in sent] == ["resolved"] * 100 + ["created"] * 200


def test_a_resolved_listing_over_10000_is_split_by_service(api):
    incidents = many(service="PCHK001")[: MANY // 2] + many(service="PPAY002")[MANY // 2 :]
    fake = serve(api, incidents)
    client = PagerDutyClient(BASE, TOKEN, service_ids=["PCHK001", "PPAY002"], sleep=lambda s: None)
    got = client.resolved_since(START)
    assert len({i["id"] for i in got}) == MANY
    assert [q["service_ids[]"] for q in fake.requests[99:101]] == [["PCHK001", "PPAY002"], ["PCHK001"]]
    with pytest.raises(ListingTooLarge, match="more than 10,000 incidents resolved since 2024-03-01T00:00:00Z of all"):
        PagerDutyClient(BASE, TOKEN, sleep=lambda s: None).resolved_since(START)


# --- what counts as updated in the window -------------------------------------------------------------------


def test_the_resolved_listing_catches_an_incident_created_60_days_before_and_resolved_in_the_window(api):
    old = incident(1, START - pd.Timedelta(days=60), resolved=START + pd.Timedelta(hours=5))
    before = [incident(100 + n, START - pd.Timedelta(days=61), resolved=START - pd.Timedelta(hours=1 + n))
              for n in range(250)]  # fmt: skip
    fake = serve(api, [old, *before])
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001"]  # those resolved before START are not in the window
    row = batch.good.iloc[0]
    assert row["opened_at"] == START - pd.Timedelta(days=60) and row["resolved_at"] == START + pd.Timedelta(hours=5)
    assert len(fake.of("resolved")) == 1 and len(fake.requests) == 2  # the first page already ends before START


def test_an_incident_created_or_resolved_in_the_window_is_kept_whatever_its_later_updated_at(api):
    later = END + pd.Timedelta(days=3)
    fake_incidents = [
        incident(1, START + pd.Timedelta(hours=1), status="triggered", updated=later),  # created in, edited after
        incident(2, START - pd.Timedelta(days=9), resolved=START + pd.Timedelta(hours=2), updated=later),
        incident(3, START - pd.Timedelta(days=9), resolved=END + pd.Timedelta(hours=2)),  # resolved after the window
        incident(4, START - pd.Timedelta(days=9), status="acknowledged", updated=START + pd.Timedelta(hours=3)),
        incident(5, START - pd.Timedelta(days=9), status="triggered", updated=START - pd.Timedelta(days=5)),
        incident(6, START - pd.Timedelta(days=9), resolved=START - pd.Timedelta(hours=1)),  # on the last page
        incident(7, START - pd.Timedelta(days=9), resolved=START - pd.Timedelta(hours=2),
                 updated=START + pd.Timedelta(hours=4)),  # resolved before, changed in the window
    ]  # fmt: skip
    serve(api, fake_incidents)
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001", "Q000002", "Q000004", "Q000007"]
    statuses = dict(zip(batch.good["source_id"], batch.good["status"], strict=True))
    assert statuses["Q000004"] == "acknowledged"  # an acknowledgement of an older incident, via the open listing


def test_an_incident_in_two_listings_lands_once_at_its_newest(api):
    fresh = incident(1, START + pd.Timedelta(hours=1), status="triggered")
    fake = FakePagerDuty([fresh])
    resolved = incident(1, START + pd.Timedelta(hours=1), resolved=START + pd.Timedelta(hours=2))

    def resolve_after_the_first_request(request):  # resolved between the open and the resolved listings (read so)
        answer = fake(request)
        fake.incidents = [resolved]
        return answer

    api.add_callback(responses.GET, URL, callback=resolve_after_the_first_request)
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001"] and batch.same_time_conflicts == 0
    row = batch.good.iloc[0]
    assert (row["status"], row["resolved_at"]) == ("resolved", START + pd.Timedelta(hours=2))


# --- the fallback: creation listings when the resolved listing passes the cap ------------------------------


def a_window_of_every_kind():
    """Incidents of every relation to [START, END), on both services."""
    day = pd.Timedelta(days=1)
    return [
        *[incident(n, START + pd.Timedelta(hours=n), service=("PCHK001", "PPAY002")[n % 2]) for n in range(1, 6)],
        incident(6, START + pd.Timedelta(hours=7), status="triggered"),  # created in the window, open
        incident(7, START + pd.Timedelta(hours=8), status="acknowledged", service="PPAY002"),
        incident(8, START + pd.Timedelta(hours=20), resolved=END + 2 * day),  # resolved after the window
        incident(9, START - 60 * day, resolved=START + pd.Timedelta(hours=5)),  # created 60 days before
        incident(10, START - 170 * day, resolved=START + pd.Timedelta(hours=6), service="PPAY002"),
        incident(11, START - 9 * day, status="acknowledged", updated=START + pd.Timedelta(hours=3)),
        incident(12, START - 9 * day, status="triggered", updated=START - 5 * day),  # open, untouched: dropped
        incident(13, START - 9 * day, resolved=START - pd.Timedelta(hours=1)),  # resolved before: dropped
        incident(14, START - 9 * day, resolved=END + day),  # opened before, resolved after: dropped
        incident(15, START - 200 * day, resolved=START - 100 * day),  # long gone: dropped
    ]


def test_a_resolved_listing_past_the_cap_for_one_service_falls_back_to_creation_listings(api):
    fake = serve_for_the_fallback(api, a_window_of_every_kind())
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == [f"Q{n:06d}" for n in range(1, 12)] and batch.rejected.empty
    # the resolved listing reached the cap for both services, then for PCHK001 alone: no further split
    resolved = fake.of("resolved")
    assert [q["service_ids[]"] for q in resolved] == [["PCHK001", "PPAY002"]] * 11 + [["PCHK001"]] * 11
    assert resolved[-1]["offset"] == [str(LOW_CAP)]
    (created,) = fake.of("created")
    assert (stamp(created["since"][0]), stamp(created["until"][0])) == (START, END) and "statuses[]" not in created
    (looked_back,) = fake.of("created_resolved")
    assert (stamp(looked_back["since"][0]), stamp(looked_back["until"][0])) == (START - pd.Timedelta(days=180), START)
    assert looked_back["service_ids[]"] == ["PCHK001", "PPAY002"] and looked_back["sort_by"] == ["created_at:asc"]
    assert len(fake.of("open")) == 1


def test_the_fallback_returns_what_the_normal_path_returns(api):
    data = a_window_of_every_kind() + later_resolutions()
    normal = serve(api, data)
    by_resolution = source().fetch("incidents", START, END)
    assert normal.of("created") == [] and normal.of("created_resolved") == []
    api.reset()
    fallback = serve(api, data, cap=LOW_CAP)
    by_creation = source().fetch("incidents", START, END)
    assert fallback.of("created") and fallback.of("created_resolved")
    assert ids(by_creation) == [f"Q{n:06d}" for n in range(1, 12)]  # Q000009: created 60 days before the window

    def rows(batch):
        return batch.good.sort_values("source_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(by_creation), rows(by_resolution))
    assert by_creation.rejected.empty and by_resolution.rejected.empty


def test_the_normal_path_catches_an_incident_created_300_days_before_and_resolved_in_the_window(api):
    ancient = incident(1, START - pd.Timedelta(days=300), resolved=START + pd.Timedelta(hours=5))
    recent = incident(2, START - pd.Timedelta(days=179), resolved=START + pd.Timedelta(hours=6))
    serve(api, [ancient, recent, *later_resolutions()])
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001", "Q000002"]
    assert batch.good.set_index("source_id").loc["Q000001", "opened_at"] == START - pd.Timedelta(days=300)
    api.reset()
    serve_for_the_fallback(api, [ancient, recent])
    # the fallback's one documented blind spot: opened more than max_range_days before the window
    assert ids(source().fetch("incidents", START, END)) == ["Q000002"]


def test_the_look_back_keeps_the_incidents_resolved_at_or_after_start(api):
    day = pd.Timedelta(days=1)
    fake = serve(api, [
        incident(1, START - 10 * day, resolved=START - pd.Timedelta(seconds=1), updated=START + day / 2),
        incident(2, START - 10 * day, resolved=START),
        incident(3, START - 10 * day, resolved=END + 30 * day),
        incident(4, START - 10 * day, status="acknowledged"),  # open: not in this listing
        incident(5, START - 181 * day, resolved=START + day / 2),  # created before the look-back
        incident(6, START + day / 2),  # created in the window: not in this listing
    ])  # fmt: skip
    got = PagerDutyClient(BASE, TOKEN, sleep=lambda s: None).resolved_since_by_creation(START)
    assert [i["id"] for i in got] == ["Q000002", "Q000003"]
    (query,) = fake.requests
    assert (query["since"], query["until"], query["statuses[]"]) == (
        ["2023-09-03T00:00:00Z"], ["2024-03-01T00:00:00Z"], ["resolved"])  # fmt: skip


def test_an_open_listing_past_the_cap_is_an_error_not_a_fallback(api):
    serve(api, [incident(n, START - pd.Timedelta(days=3, minutes=n), status="triggered") for n in range(1_050)],
          cap=LOW_CAP)  # fmt: skip
    with pytest.raises(ListingTooLarge, match=r"^sources\.pagerduty: .* more than 10,000 incidents open of service"):
        source(services=("PCHK001",)).fetch("incidents", START, END)


def test_one_row_per_id_the_newest_updated_at_and_undated_as_oldest():
    a = {"id": "Q1", "updated_at": "2024-03-01T10:00:00Z", "v": 1}
    b = {"id": "Q1", "updated_at": "2024-03-01T12:00:00+01:00", "v": 2}  # 11:00Z: newer
    c = {"id": "Q1", "updated_at": "2024-03-01T10:30:00Z", "v": 3}
    d = {"id": "Q1", "v": 4, "created_at": None}
    e = {"id": "Q2", "updated_at": "2024-03-01T10:00:00Z", "v": 5}
    f = {"id": "Q2", "updated_at": "2024-03-01T10:00:00Z", "v": 6}  # a tie: the later one
    rows = incident_rows([a, e, b, c, d, f, {"v": 7}], SERVICES)
    assert [payload["v"] for payload in rows["payload"]] == [2, 6, 7]


# --- vendor words to canonical records ---------------------------------------------------------------------


def fixture_incidents():
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_a_fixture_page_lands_with_offsets_in_utc_and_its_malformed_records_rejected(api):
    serve(api, fixture_incidents())
    # PLEG099 is read (sources.pagerduty.services) but no service claims it
    batch = source(services=("PCHK001", "PPAY002", "PLEG099")).fetch("incidents", START, END)
    good = batch.good.set_index("source_id")
    assert sorted(good.index) == ["Q1AAAAA", "Q2BBBBB", "Q5EEEEE", "Q6FFFFF"]
    assert good.loc["Q1AAAAA", "opened_at"] == pd.Timestamp("2024-03-01T08:15:00Z")
    assert good.loc["Q1AAAAA", "resolved_at"] == pd.Timestamp("2024-03-01T09:30:00Z")
    assert good.loc["Q2BBBBB", "opened_at"] == pd.Timestamp("2024-03-01T19:00:00Z")
    assert str(good["opened_at"].dtype) == "datetime64[ns, UTC]"
    assert pd.isna(good.loc["Q2BBBBB", "resolved_at"]) and good.loc["Q2BBBBB", "status"] == "acknowledged"
    # resolved without resolved_at: its last status change; updated_at falls back the same way
    assert good.loc["Q6FFFFF", "resolved_at"] == pd.Timestamp("2024-03-01T07:00:00Z")
    assert good.loc["Q6FFFFF", "updated_at"] == pd.Timestamp("2024-03-01T07:00:00Z")
    assert dict(good["service"]) == {"Q1AAAAA": "checkout", "Q2BBBBB": "payments", "Q5EEEEE": "unmapped",
                                     "Q6FFFFF": "checkout"}  # fmt: skip
    assert dict(good["severity"]) == {"Q1AAAAA": "sev1", "Q2BBBBB": "sev4", "Q5EEEEE": "sev3", "Q6FFFFF": "sev2"}
    assert good.loc["Q1AAAAA", "title"] == "Checkout API 5xx above 2%"
    assert pd.isna(good.loc["Q1AAAAA", "caused_by_change"])
    assert set(good["source"]) == {"pagerduty"}
    rejected = batch.rejected.set_index("source_id")
    assert sorted(rejected.index) == ["Q3CCCCC", "Q4DDDDD"]
    assert rejected.loc["Q4DDDDD", ["column", "reason"]].tolist() == ["opened_at", "missing"]
    assert rejected.loc["Q3CCCCC", "column"] == "severity"
    assert "P9 (not in sources.pagerduty.severity_by_priority)" in rejected.loc["Q3CCCCC", "reason"]
    assert json.loads(rejected.loc["Q3CCCCC", "payload"])["payload"]["priority"]["summary"] == "P9"


def test_the_vendor_incident_is_kept_in_the_payload_column(api):
    page = fixture_incidents()
    serve(api, page)
    good = source().fetch("incidents", START, END).good.set_index("source_id")
    assert good.loc["Q1AAAAA", "payload"] == page[0]
    assert good.loc["Q1AAAAA", "payload"]["html_url"] == "https://acme.pagerduty.com/incidents/Q1AAAAA"


@pytest.mark.parametrize(
    ("priority", "urgency", "expected"),
    [("P1", "low", "sev1"), ("P2", "high", "sev2"), ("p3", "high", "sev3"), ("P4", "high", "sev4"),
     ("P5", "high", "sev5"), (None, "high", "sev2"), (None, "low", "sev4"), (None, None, None)],
)  # fmt: skip
def test_default_severity_from_priority_else_urgency(priority, urgency, expected):
    fields = {"priority": {"summary": priority} if priority else None, "urgency": urgency}
    row = incident_rows([fields | {"id": "Q1"}], SERVICES)
    assert row.loc[0, "severity"] == expected


def test_severity_maps_are_configurable_and_replace_the_defaults(api):
    serve(api, [
        incident(1, "2024-03-01T01:00:00Z", priority="Sev-1"),
        incident(2, "2024-03-01T02:00:00Z", priority="P1"),  # not in the configured map: rejected
        incident(3, "2024-03-01T03:00:00Z", priority=None, urgency="high"),
        incident(4, "2024-03-01T04:00:00Z", priority=None, urgency="low"),
        incident(5, "2024-03-01T05:00:00Z", priority=None, urgency="odd"),
    ])  # fmt: skip
    batch = source(severity_by_priority={"SEV-1": "sev1", "SEV-2": "sev2"},
                   severity_by_urgency={"high": "sev1", "low": "sev3"}).fetch("incidents", START, END)  # fmt: skip
    assert dict(zip(batch.good["source_id"], batch.good["severity"], strict=True)) == {
        "Q000001": "sev1", "Q000003": "sev1", "Q000004": "sev3"}  # fmt: skip
    reasons = dict(zip(batch.rejected["source_id"], batch.rejected["reason"], strict=True))
    assert "P1 (not in sources.pagerduty.severity_by_priority)" in reasons["Q000002"]
    assert "odd (not in sources.pagerduty.severity_by_urgency)" in reasons["Q000005"]
    with pytest.raises(ValidationError):
        PagerDutyConfig(severity_by_priority={"P1": "critical"})


def test_a_service_is_mapped_by_id_else_by_name_else_unmapped():
    mapping = {"checkout": ServiceMapping(pagerduty_services=["pchk001"]),
               "search": ServiceMapping(pagerduty_services=["Search API"])}  # fmt: skip
    rows = incident_rows([
        {"id": "Q1", "service": {"id": "PCHK001", "summary": "Checkout"}},
        {"id": "Q2", "service": {"id": "PSRC003", "summary": "search api"}},
        {"id": "Q3", "service": {"id": "PZZZ999", "summary": "Other"}},
        {"id": "Q4"},
    ], mapping)  # fmt: skip
    assert rows["service"].tolist() == ["checkout", "search", "unmapped", None]
    assert rows["entity"].tolist() == ["PCHK001", "PSRC003", "PZZZ999", None]  # the service id it was mapped by


def test_other_kinds_are_empty_and_send_nothing(api):
    fake = serve(api, [incident(1, "2024-03-01T10:00:00Z")])
    batch = source().fetch("changes", START, END)
    assert batch.good.empty and batch.rejected.empty and batch.cursor is None and fake.requests == []


# --- failures: retries, give-up, the pre-flight ------------------------------------------------------------


def test_429_with_retry_after_and_503_are_retried_and_a_spent_budget_waits_for_its_reset(api):
    fake = FakePagerDuty([incident(1, "2024-03-01T10:00:00Z")])
    api.add(responses.GET, URL, status=429, headers={"Retry-After": "7"})
    api.add(responses.GET, URL, status=503)
    api.add(responses.GET, URL, status=200, json={"incidents": [], "limit": 100, "offset": 0, "more": False},
            headers={"ratelimit-remaining": "0", "ratelimit-reset": "30"})  # fmt: skip
    api.add_callback(responses.GET, URL, callback=fake)
    sleeps: list[float] = []
    batch = source(sleeps=sleeps).fetch("incidents", START, END)
    assert sleeps[0] == 7.0 and 0 < sleeps[1] < 5 and sleeps[2] == 31.0 and len(sleeps) == 3
    assert batch.rejected.empty and len(fake.requests) == 1  # the open listing was answered before it


def test_giving_up_is_a_source_error_naming_the_section_and_not_the_token(api):
    api.add(responses.GET, URL, status=503)
    sleeps: list[float] = []
    with pytest.raises(VendorHttpError) as raised:
        source(sleeps=sleeps).fetch("incidents", START, END)
    message = str(raised.value)
    assert message == "sources.pagerduty: GET https://pd.test/incidents: gave up after 6 attempts: HTTP 503"
    assert isinstance(raised.value, SourceError) and len(sleeps) == 5 and TOKEN not in message


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_fails_the_check_naming_the_variable_and_never_the_token(api, status):
    api.add(responses.GET, URL, status=status, json={"error": {"message": "Unauthorized"}})
    config = PagerDutyConfig(base_url=BASE, token_env="PD_API_KEY")
    context = SourceContext(Path("."), SERVICES, ("production",))
    pd_source = pagerduty_source(config, context, {"PD_API_KEY": TOKEN}, sleep=lambda s: None)
    with pytest.raises(SourceError) as raised:
        pd_source.check()
    message = str(raised.value)
    assert message == (f"sources.pagerduty: PagerDuty refused the token in PD_API_KEY (HTTP {status}): "
                       "check the API key and its access")  # fmt: skip
    assert "\n" not in message and TOKEN not in message and TOKEN not in repr(raised.value)
    assert len(api.calls) == 1 and parse_qs(urlsplit(api.calls[0].request.url).query)["limit"] == ["1"]


def test_the_check_sends_one_cheap_authenticated_request(api):
    fake = serve(api, [incident(1, "2024-03-01T10:00:00Z")])
    source().check()
    assert len(fake.requests) == 1 and fake.requests[0]["limit"] == ["1"]
    assert fake.headers[0]["Authorization"] == f"Token token={TOKEN}"


def test_a_check_that_fails_otherwise_names_the_section_and_the_status(api):
    api.add(responses.GET, URL, status=404)
    with pytest.raises(SourceError, match=r"^sources\.pagerduty: GET https://pd\.test/incidents: HTTP 404$"):
        source().check()


def test_the_factory_needs_the_token_variable():
    config = PagerDutyConfig(base_url=BASE)
    context = SourceContext(Path("."), SERVICES, ("production",))
    with pytest.raises(SourceError, match=r"PAGERDUTY_TOKEN is not set \(sources\.pagerduty\.token_env\)"):
        pagerduty_source(config, context, {})
    built = pagerduty_source(config, context, ENV)
    assert built.name == "pagerduty"


def test_config_defaults():
    config = PagerDutyConfig()
    assert config.severity_by_priority == {"P1": "sev1", "P2": "sev2", "P3": "sev3", "P4": "sev4", "P5": "sev5"}
    assert config.severity_by_urgency == {"high": "sev2", "low": "sev4"}
    assert (config.max_range_days, config.services, config.token_env) == (180, [], "PAGERDUTY_TOKEN")


def test_a_timestamp_out_of_range_is_one_rejected_incident_not_a_failed_run(api):
    in_window = START + pd.Timedelta(hours=1)
    broken = incident(2, in_window) | {"resolved_at": "9999-12-31T23:59:59Z",
                                       "last_status_change_at": "9999-12-31T23:59:59Z"}
    ancient = incident(3, in_window) | {"created_at": "0001-01-01T00:00:00Z"}
    serve(api, [incident(1, in_window), broken, ancient])
    batch = source().fetch("incidents", START, END)
    assert ids(batch) == ["Q000001"]
    rejected = batch.rejected.set_index("source_id")
    assert rejected.loc["Q000002", "column"] == "resolved_at" and rejected.loc["Q000003", "column"] == "opened_at"
    assert set(rejected["reason"]) == {OUT_OF_RANGE}


def test_nul_characters_are_stripped_from_text(api):
    serve(api, [incident(1, START + pd.Timedelta(hours=1), title="disk\x00 full")])
    assert list(source().fetch("incidents", START, END).good["title"]) == ["disk full"]


# --- paging that does not end ---------------------------------------------------------------------------------


def test_an_offset_answered_with_the_same_page_again_stops_at_the_second_page(api):
    sent = []
    page = [incident(n, "2024-03-01T10:00:00Z") for n in range(100)]

    def same_page(request):
        query = parse_qs(urlsplit(request.url).query)
        if query.get("statuses[]") == ["triggered", "acknowledged"]:
            return 200, {}, json.dumps({"incidents": [], "limit": 100, "offset": 0, "more": False})
        sent.append(query)
        return 200, {}, json.dumps({"incidents": page, "limit": 100, "offset": 0, "more": True})

    api.add_callback(responses.GET, URL, callback=same_page)
    with pytest.raises(VendorHttpError) as raised:
        source(services=("PCHK001",)).fetch("incidents", START, END)
    assert str(raised.value) == ("sources.pagerduty: GET https://pd.test/incidents: page 2 repeated page 1, yet "
                                 "the vendor promises another: the listing does not advance; stopped")  # fmt: skip
    assert [q["offset"] for q in sent] == [["0"], ["100"]]


def test_a_listing_past_the_vendors_own_total_stops_at_the_ceiling_it_implies(api):
    counter = itertools.count()

    def more_than_its_total(request):  # says 150 incidents, then serves new ones for ever
        query = parse_qs(urlsplit(request.url).query)
        page = [incident(next(counter), "2024-03-01T10:00:00Z") for _ in range(100)]
        return 200, {}, json.dumps({"incidents": page, "limit": 100, "offset": int(query["offset"][0]),
                                    "more": True, "total": 150})  # fmt: skip

    api.add_callback(responses.GET, URL, callback=more_than_its_total)
    client = PagerDutyClient(BASE, TOKEN, service_ids=["PCHK001"], sleep=lambda seconds: None)
    with pytest.raises(VendorHttpError) as raised:
        client.created(START, END)
    assert str(raised.value) == ("pagerduty: GET https://pd.test/incidents: the vendor still promises more after 9 "
                                 "pages of 900 incidents, more than the vendor's own total of records needs; stopped")
    assert len(api.calls) == 9  # what 150 needs (2 pages), twice over, plus 5
