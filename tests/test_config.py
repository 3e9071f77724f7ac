"""scorecard.yaml validation: the root example parses, and every problem is one `path: message` line.

Paths use the file's own notation (`scorecard.perspectives[1].objectives[0].kpis[2].target`), all
problems of a file are reported at once, and a secret pasted into an `*_env` field is refused
without being echoed.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from connectors.limits import Limits
from pipelines.config import Config, parse_config, parse_config_text, read_config
from scoring.config import ConfigError

ROOT_CONFIG = Path(__file__).resolve().parents[1] / "scorecard.yaml"
KPI = "scorecard.perspectives[1].objectives[0].kpis[0]"  # `deploys` in BASE


def kpi(kpi_id: str, metric: str, **fields: object) -> dict[str, object]:
    return {"id": kpi_id, "name": kpi_id.replace("_", " ").title(), "metric": metric, **fields}


# perspectives[0] = financial (1 objective, 1 KPI); perspectives[1] = internal_process, whose
# objectives[0].kpis are [deploys, cfr, lead_time]: kpis[2] is the example path in scoring/config.py.
BASE: dict[str, object] = {
    "services": {"checkout": {"github_repos": ["acme/checkout"]}, "search": {"github_repos": ["acme/search"]}},
    "metrics": {"failure_severities": ["sev1", "sev2"], "change_failure_window": "24h"},
    "scorecard": {
        "name": "Test Scorecard",
        "perspectives": [
            {
                "id": "financial",
                "name": "Financial",
                "objectives": [
                    {
                        "id": "spend",
                        "name": "Spend within budget",
                        "kpis": [
                            kpi("it_spend", "manual:it_spend", direction="lower_is_better", baseline=110,
                                threshold=105, target=100, stretch=95),
                        ],
                    }
                ],
            },
            {
                "id": "internal_process",
                "name": "Internal Process",
                "objectives": [
                    {
                        "id": "delivery",
                        "name": "Fast, safe delivery",
                        "kpis": [
                            kpi("deploys", "deployment_frequency", baseline=0, threshold=2, target=4, stretch=8),
                            kpi("cfr", "change_failure_rate", baseline=50, threshold=30, target=15),
                            kpi("lead_time", "lead_time_for_changes", baseline=120, threshold=60, target=48,
                                stretch=24),
                        ],
                    }
                ],
            },
        ],
    },
}  # fmt: skip


def base() -> dict:
    return copy.deepcopy(BASE)


def kpi_of(data: dict, perspective: int = 1, objective: int = 0, index: int = 0) -> dict:
    return data["scorecard"]["perspectives"][perspective]["objectives"][objective]["kpis"][index]


def errors_of(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


# --- the root example ----------------------------------------------------------------------


def test_root_scorecard_yaml_parses_with_four_perspectives():
    config = parse_config_text(ROOT_CONFIG.read_text(encoding="utf-8"))
    assert isinstance(config, Config)
    perspectives = config.scorecard.perspectives
    assert [(p.id, p.name) for p in perspectives] == [
        ("financial", "Financial"),
        ("customer", "Customer"),
        ("internal_process", "Internal Process"),
        ("learning_growth", "Learning & Growth"),
    ]
    assert config.scorecard.review_period == "month"
    assert config.scorecard.dora_report_year == 2024
    assert config.metrics.change_failure_window == timedelta(hours=24)
    assert config.sources.github.token_env == "GITHUB_TOKEN"
    assert config.sources.servicenow.password_env == "SN_PASSWORD"
    assert "all" not in config.services and "checkout" in config.services


def test_root_scorecard_yaml_mixes_derived_and_manual_kpis():
    config = parse_config_text(ROOT_CONFIG.read_text(encoding="utf-8"))
    kpis = {k.id: k for _, _, k in config.iter_kpis()}
    derived = {k.metric for k in kpis.values() if not k.is_manual}
    assert {"availability", "mttr", "deployment_frequency", "lead_time_for_changes", "change_failure_rate",
            "failed_deployment_recovery_time"} <= derived  # fmt: skip
    assert kpis["it_spend_vs_budget"].is_manual and kpis["it_spend_vs_budget"].metric == "manual:it_spend_vs_budget"
    assert kpis["checkout_availability"].service == "checkout"
    assert kpis["availability"].service == "all"
    assert kpis["lead_time_for_changes"].direction == "lower_is_better"
    assert kpis["it_spend_vs_budget"].clamp is True
    # Every KPI ends up with a direction, whether from the file or the metric dictionary.
    assert all(k.direction in ("higher_is_better", "lower_is_better") for k in kpis.values())


def test_base_config_of_these_tests_is_valid():
    config = parse_config(base())
    deploys = config.scorecard.kpi("deploys")
    # direction and unit come from the metric dictionary when the file leaves them out
    assert (deploys.direction, deploys.unit, deploys.service) == ("higher_is_better", "count", "all")
    assert config.scorecard.kpi("cfr").direction == "lower_is_better"
    assert config.scorecard.slug == "test_scorecard"


# --- paths in the file's own notation --------------------------------------------------------


def test_missing_field_names_its_path_like_product_md():
    data = base()
    del kpi_of(data, 1, 0, 2)["target"]
    assert errors_of(data) == ["scorecard.perspectives[1].objectives[0].kpis[2].target: field required"]


def test_missing_scorecard_section():
    data = base()
    del data["scorecard"]
    assert errors_of(data) == ["scorecard: field required"]


def test_wrong_type_names_its_path():
    data = base()
    kpi_of(data)["weight"] = "heavy"
    (line,) = errors_of(data)
    assert line.startswith(f"{KPI}.weight: ")
    assert "number" in line


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (lambda d: d.update(bogus=1), "bogus: unknown key"),
        (lambda d: d.update(sources={"gitlab": {}}), "sources.gitlab: unknown key"),
        (lambda d: d.update(sources={"github": {"token_env": "GITHUB_TOKEN", "org": "acme"}}),
         "sources.github.org: unknown key"),
        (lambda d: d["metrics"].update(window="24h"), "metrics.window: unknown key"),
        (lambda d: d["scorecard"].update(colour="blue"), "scorecard.colour: unknown key"),
        (lambda d: d["scorecard"]["perspectives"][0].update(tag="x"), "scorecard.perspectives[0].tag: unknown key"),
        (lambda d: d["scorecard"]["perspectives"][1]["objectives"][0].update(goal="x"),
         "scorecard.perspectives[1].objectives[0].goal: unknown key"),
        (lambda d: kpi_of(d).update(targt=5), f"{KPI}.targt: unknown key"),
        (lambda d: kpi_of(d).update(scope={"service": "checkout", "team": "x"}), f"{KPI}.scope.team: unknown key"),
        (lambda d: d["services"]["checkout"].update(gitlab=["x"]), "services.checkout.gitlab: unknown key"),
    ],
    ids=["top", "source", "source-field", "metrics", "scorecard", "perspective", "objective", "kpi", "scope",
         "service"],
)  # fmt: skip
def test_unknown_keys_anywhere_are_errors(where, expected):
    data = base()
    where(data)
    assert errors_of(data) == [expected]


# --- ids ---------------------------------------------------------------------------------------


def test_duplicate_perspective_id():
    data = base()
    data["scorecard"]["perspectives"][1]["id"] = "financial"
    assert errors_of(data) == [
        "scorecard.perspectives[1].id: duplicate perspective id 'financial' (first at scorecard.perspectives[0].id)"
    ]


def test_duplicate_objective_id_across_perspectives():
    data = base()
    data["scorecard"]["perspectives"][1]["objectives"][0]["id"] = "spend"
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].id: duplicate objective id 'spend' "
        "(first at scorecard.perspectives[0].objectives[0].id)"
    ]


def test_duplicate_kpi_id_across_objectives():
    data = base()
    kpi_of(data, 1, 0, 2)["id"] = "it_spend"
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].kpis[2].id: duplicate KPI id 'it_spend' "
        "(first at scorecard.perspectives[0].objectives[0].kpis[0].id)"
    ]


def test_duplicate_reported_even_when_another_part_fails():
    """The duplicate check reads the raw data, so it still speaks when pydantic fails elsewhere."""
    data = base()
    kpi_of(data, 1, 0, 1)["id"] = "deploys"
    del kpi_of(data, 1, 0, 2)["target"]
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].kpis[2].target: field required",
        "scorecard.perspectives[1].objectives[0].kpis[1].id: duplicate KPI id 'deploys' "
        "(first at scorecard.perspectives[1].objectives[0].kpis[0].id)",
    ]



# --- the strategy map's cause → effect edges and the escalation rules ---------------------------


def objective_of(data: dict, perspective: int, objective: int = 0) -> dict:
    return data["scorecard"]["perspectives"][perspective]["objectives"][objective]


def test_an_objective_supports_the_objectives_it_names():
    data = base()
    objective_of(data, 1)["supports"] = ["spend"]
    config = parse_config(data)
    assert [(o.id, o.supports) for _, o in config.scorecard.objectives()] == [("spend", []), ("delivery", ["spend"])]


def test_root_scorecard_yaml_draws_a_strategy_map_from_learning_to_financial():
    config = parse_config_text(ROOT_CONFIG.read_text(encoding="utf-8"))
    edges = {(o.id, target) for _, o in config.scorecard.objectives() for target in o.supports}
    assert ("skilled_engineers", "fast_flow") in edges and ("reliable_services", "spend_within_budget") in edges


def test_supports_an_unknown_objective_or_itself_is_refused():
    data = base()
    objective_of(data, 1)["supports"] = ["spend", "speed", "delivery"]
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].supports[1]: unknown objective 'speed' (objectives: spend, delivery)",
        "scorecard.perspectives[1].objectives[0].supports[2]: objective 'delivery' cannot support itself",
    ]


def test_supports_problems_are_reported_with_other_problems():
    data = base()
    objective_of(data, 1)["supports"] = ["speed"]
    del kpi_of(data, 1, 0, 2)["target"]
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].kpis[2].target: field required",
        "scorecard.perspectives[1].objectives[0].supports[0]: unknown objective 'speed' (objectives: spend, delivery)",
    ]


def test_every_kpi_escalates_by_the_scorecard_rule_unless_it_sets_its_own_or_none():
    data = base()
    data["scorecard"]["escalation"] = {"no_data_periods": 3}
    kpi_of(data, 1, 0, 1)["escalation"] = {"triggers": ["red"]}
    kpi_of(data, 1, 0, 2)["escalation"] = False
    kpi_of(data, 0, 0, 0)["escalation"] = {"enabled": False}
    scorecard = parse_config(data).scorecard
    rules = {kpi.id: scorecard.escalation_for(kpi) for _, _, kpi in scorecard.iter_kpis()}
    assert (rules["deploys"].triggers, rules["deploys"].no_data_periods) == (["red", "drop", "no_data"], 3)
    assert (rules["cfr"].triggers, rules["cfr"].no_data_periods) == (["red"], 2)
    assert rules["lead_time"] is None and rules["it_spend"] is None


def test_escalation_off_for_the_whole_scorecard():
    data = base()
    data["scorecard"]["escalation"] = False
    kpi_of(data, 1, 0, 1)["escalation"] = {"triggers": ["red"]}  # a KPI may still ask for its own
    scorecard = parse_config(data).scorecard
    rules = {kpi.id: scorecard.escalation_for(kpi) for _, _, kpi in scorecard.iter_kpis()}
    assert rules["deploys"] is None and rules["cfr"].triggers == ["red"]


@pytest.mark.parametrize(("rule", "expected"), [
    ({"triggers": ["amber"]}, "escalation.triggers[0]: input should be 'red', 'drop' or 'no_data'"),
    ({"triggers": []}, "escalation.triggers: list should have at least 1 item after validation, not 0"),
    ({"no_data_periods": 0}, "escalation.no_data_periods: input should be greater than or equal to 1"),
])  # fmt: skip
def test_a_bad_escalation_rule_names_its_path(rule, expected):
    data = base()
    kpi_of(data)["escalation"] = rule
    assert any(line.startswith(f"{KPI}.") and line.endswith(expected) for line in errors_of(data)), errors_of(data)


def test_id_with_spaces_is_refused():
    data = base()
    kpi_of(data)["id"] = "deploy count"
    assert errors_of(data) == [f"{KPI}.id: 'deploy count' is not an id: use letters, digits and _ . : - (no spaces)"]


# --- baseline, threshold, target, stretch ------------------------------------------------------


def test_target_equal_to_baseline():
    data = base()
    kpi_of(data).update(baseline=4, threshold=None, stretch=None)
    assert errors_of(data) == [f"{KPI}.target: must differ from baseline 4"]


@pytest.mark.parametrize(
    ("metric", "limits", "expected"),
    [
        # higher_is_better: baseline < target, threshold <= target <= stretch
        ("deployment_frequency", {"threshold": 5}, "threshold: must not be above target 4 for higher_is_better"),
        ("deployment_frequency", {"stretch": 3}, "stretch: must not be below target 4 for higher_is_better"),
        ("deployment_frequency", {"baseline": 6, "threshold": None, "stretch": None},
         "baseline: must be below target 4 for higher_is_better"),
        ("deployment_frequency", {"threshold": -1}, "threshold: must not be below baseline 0 for higher_is_better"),
        # lower_is_better: baseline > target, threshold >= target >= stretch
        ("change_failure_rate", {"threshold": 3}, "threshold: must not be below target 4 for lower_is_better"),
        ("change_failure_rate", {"stretch": 5}, "stretch: must not be above target 4 for lower_is_better"),
        ("change_failure_rate", {"baseline": 2, "threshold": None, "stretch": None},
         "baseline: must be above target 4 for lower_is_better"),
        ("change_failure_rate", {"threshold": 12}, "threshold: must not be above baseline 10 for lower_is_better"),
    ],
)  # fmt: skip
def test_limits_out_of_order_for_each_direction(metric, limits, expected):
    data = base()
    if metric == "deployment_frequency":
        kpi_of(data).update({"baseline": 0, "threshold": 2, "target": 4, "stretch": 8, **limits})
    else:
        kpi_of(data).update({"metric": metric, "baseline": 10, "threshold": 6, "target": 4, "stretch": 2, **limits})
    assert errors_of(data) == [f"{KPI}.{expected}"]


@pytest.mark.parametrize(
    ("metric", "limits"),
    [
        ("deployment_frequency", {"baseline": 0, "threshold": 4, "target": 4, "stretch": 4}),  # equal to target: ok
        ("deployment_frequency", {"baseline": 0, "threshold": None, "target": 4, "stretch": None}),
        ("change_failure_rate", {"baseline": 10, "threshold": 4, "target": 4, "stretch": 4}),
        ("change_failure_rate", {"baseline": 10, "threshold": 6, "target": 4, "stretch": 0}),
        ("deployment_frequency", {"baseline": 0, "threshold": 0, "target": 4, "stretch": None}),  # = baseline: ok
        ("change_failure_rate", {"baseline": 10, "threshold": 10, "target": 4, "stretch": None}),
    ],
)
def test_limits_in_order_are_accepted(metric, limits):
    data = base()
    kpi_of(data).update({"metric": metric, **limits})
    config = parse_config(data)
    assert config.scorecard.kpi("deploys").target == 4


def test_a_threshold_on_the_bad_side_of_the_baseline_is_refused():
    data = base()  # a value of 115 would be amber, yet score -0.5 (worse than the baseline)
    kpi_of(data, perspective=0).update(baseline=110, threshold=120, target=100, stretch=None)
    assert errors_of(data) == [
        "scorecard.perspectives[0].objectives[0].kpis[0].threshold: must not be above baseline 110 for lower_is_better"
    ]


def test_a_baseline_out_of_order_is_the_one_problem_named_not_the_threshold_behind_it():
    data = base()
    kpi_of(data).update(baseline=6, threshold=3, target=4, stretch=None)  # 3 is below baseline 6 too
    assert errors_of(data) == [f"{KPI}.baseline: must be below target 4 for higher_is_better"]


def test_all_ordering_problems_of_one_kpi_at_once():
    data = base()
    kpi_of(data).update(baseline=6, threshold=5, target=4, stretch=3)  # higher_is_better: all three wrong
    assert errors_of(data) == [
        f"{KPI}.baseline: must be below target 4 for higher_is_better",
        f"{KPI}.threshold: must not be above target 4 for higher_is_better",
        f"{KPI}.stretch: must not be below target 4 for higher_is_better",
    ]


# --- metrics and directions --------------------------------------------------------------------


def test_unknown_metric():
    data = base()
    kpi_of(data)["metric"] = "deploy_count"
    (line,) = errors_of(data)
    assert line.startswith(f"{KPI}.metric: unknown metric 'deploy_count' (known: availability, ")
    assert line.endswith("; or manual:<name>)")


def test_manual_metric_needs_a_name():
    data = base()
    kpi_of(data, 0, 0, 0)["metric"] = "manual:"
    (line,) = errors_of(data)
    assert line.startswith("scorecard.perspectives[0].objectives[0].kpis[0].metric: unknown metric 'manual:'")


def test_manual_metric_without_direction():
    data = base()
    del kpi_of(data, 0, 0, 0)["direction"]
    assert errors_of(data) == [
        "scorecard.perspectives[0].objectives[0].kpis[0].direction: field required for a manual metric"
    ]


def test_direction_contradicting_the_metric_dictionary():
    data = base()
    kpi_of(data)["direction"] = "lower_is_better"
    assert errors_of(data) == [
        f"{KPI}.direction: metric 'deployment_frequency' is higher_is_better (metric dictionary)"
    ]


def test_direction_agreeing_with_the_dictionary_is_fine():
    data = base()
    kpi_of(data)["direction"] = "higher_is_better"
    assert parse_config(data).scorecard.kpi("deploys").direction == "higher_is_better"


def test_unknown_direction_word():
    data = base()
    kpi_of(data, 0, 0, 0)["direction"] = "down"
    (line,) = errors_of(data)
    assert line.startswith("scorecard.perspectives[0].objectives[0].kpis[0].direction: input should be ")


# --- services and scopes -------------------------------------------------------------------------


def test_unknown_scope_service():
    data = base()
    kpi_of(data)["scope"] = {"service": "checkuot"}
    assert errors_of(data) == [f"{KPI}.scope.service: unknown service 'checkuot' (services: checkout, search)"]


def test_scope_all_and_known_service_are_accepted():
    data = base()
    kpi_of(data)["scope"] = {"service": "checkout"}
    kpi_of(data, 1, 0, 1)["scope"] = {"service": "all"}
    config = parse_config(data)
    assert config.scorecard.kpi("deploys").service == "checkout"
    assert config.scorecard.kpi("cfr").service == "all"


def test_unknown_scope_service_reported_with_other_problems():
    data = base()
    kpi_of(data)["scope"] = {"service": "nope"}
    del kpi_of(data, 1, 0, 2)["target"]
    assert errors_of(data) == [
        "scorecard.perspectives[1].objectives[0].kpis[2].target: field required",
        f"{KPI}.scope.service: unknown service 'nope' (services: checkout, search)",
    ]


def test_a_service_named_all_is_refused():
    data = base()
    data["services"]["all"] = {"github_repos": ["acme/monorepo"]}
    assert errors_of(data) == ["services.all: 'all' is reserved for the organisation-wide rows; rename that service"]


# --- change_failure_window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("45min", timedelta(minutes=45)),
        ("24h", timedelta(hours=24)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
        (" 12 h ", timedelta(hours=12)),
        (36, timedelta(hours=36)),  # a bare number is hours
        (0.5, timedelta(minutes=30)),
    ],
)
def test_change_failure_window_parses(text, expected):
    data = base()
    data["metrics"]["change_failure_window"] = text
    metrics = parse_config(data).metrics
    assert metrics.change_failure_window == expected
    assert metrics.window.total_seconds() == expected.total_seconds()


def test_change_failure_window_default_is_24h():
    data = base()
    del data["metrics"]
    assert parse_config(data).metrics.change_failure_window == timedelta(hours=24)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a day", "'a day' is not a duration like 30m, 24h, 2d or 1w"),
        ("24", "'24' is not a duration like 30m, 24h, 2d or 1w"),
        ("24 hours", "'24 hours' is not a duration like 30m, 24h, 2d or 1w"),
        ("-5h", "'-5h' is not a duration like 30m, 24h, 2d or 1w"),
        ("0h", "must be longer than zero"),
        (0, "must be longer than zero"),
        (-3, "must be longer than zero"),
        (True, "true is not a duration like 30m, 24h, 2d or 1w"),  # YAML `yes`: not one second
        (float("inf"), "not a usable duration: too long, or not a finite number"),
        (float("nan"), "not a usable duration: too long, or not a finite number"),
        ("99999999999d", "not a usable duration: too long, or not a finite number"),
    ],
)
def test_change_failure_window_bad_values(value, message):
    data = base()
    data["metrics"]["change_failure_window"] = value
    assert errors_of(data) == [f"metrics.change_failure_window: {message}"]


# --- secrets -----------------------------------------------------------------------------------------

TOKENS = {
    ("github", "token_env"): "ghp_R2d2C3poXwingYwing0123456789abcdEF",
    ("pagerduty", "token_env"): "u+AbCdEfGh1234567890",
    ("jira", "email_env"): "ops@acme.example",
    ("jira", "token_env"): "ATATT3xFfGF0SecretJiraToken=42",
    ("servicenow", "password_env"): "hunter2!",
    ("servicenow", "user_env"): "admin user",
}


@pytest.mark.parametrize(("source", "field"), list(TOKENS))
def test_secret_in_an_env_field_is_refused_and_never_echoed(source, field):
    secret = TOKENS[(source, field)]
    data = base()
    block = {"base_url": "https://example.test"} if source in ("jira", "servicenow") else {}
    data["sources"] = {source: {**block, field: secret}}
    errors = errors_of(data)
    assert errors == [
        f"sources.{source}.{field}: must name an environment variable (upper case, e.g. GITHUB_TOKEN), "
        "not hold a secret"
    ]
    assert secret not in "\n".join(errors)


def test_secret_not_echoed_from_yaml_text_either():
    secret = TOKENS[("github", "token_env")]
    text = yaml.safe_dump({**base(), "sources": {"github": {"token_env": secret}}})
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    assert secret not in str(caught.value)
    assert caught.value.errors[0].startswith("sources.github.token_env: must name an environment variable")


def test_secret_as_an_unknown_key_is_not_echoed():
    secret = TOKENS[("github", "token_env")]
    data = base()
    data["sources"] = {"github": {"token": secret}}
    errors = errors_of(data)
    assert errors == ["sources.github.token: unknown key"]


def test_env_var_names_are_accepted():
    data = base()
    data["sources"] = {
        "github": {"token_env": "GH_TOKEN_2"},
        "servicenow": {"base_url": "https://acme.service-now.com", "user_env": "SN_USER", "password_env": "SN_PW"},
    }
    config = parse_config(data)
    assert config.sources.github.token_env == "GH_TOKEN_2"
    assert config.sources.servicenow.password_env == "SN_PW"


@pytest.mark.parametrize("source", ["github", "pagerduty", "jira", "servicenow"])
@pytest.mark.parametrize("url, shown", [
    ("api.github.com", "api.github.com"), ("ftp://api.example.test", "ftp://api.example.test"),
    ("https://", "https://"), ("https:///api/v3", "https:///api/v3"), ("http//example.test", "http//example.test"),
    ("https://[::1", "https://[::1"), ("admin:hunter2@api.example.test", "a URL with user info"),
])
def test_a_base_url_without_http_and_a_host_is_refused(source, url, shown):
    data = base()
    data["sources"] = {source: {"base_url": url}}
    assert errors_of(data) == [f"sources.{source}.base_url: must be an http(s) URL with a host, got '{shown}'"]


def test_a_base_url_with_credentials_is_refused_without_echoing_them():
    data = base()
    data["sources"] = {"servicenow": {"base_url": "https://admin:hunter2@acme.service-now.com"}}
    assert errors_of(data) == ["sources.servicenow.base_url: must not carry a user or password: the source's *_env "
                               "keys name the variables holding them"]


@pytest.mark.parametrize("url", ["https://api.github.com", "http://127.0.0.1:8765/github", "HTTPS://ghe.acme.test/api/v3/",
                                 "  https://acme.atlassian.net  "])
def test_http_base_urls_are_accepted(url):
    data = base()
    data["sources"] = {"jira": {"base_url": url}}
    assert parse_config(data).sources.jira.base_url == url.strip()



@pytest.mark.parametrize("source", ["github", "pagerduty", "jira", "servicenow"])
def test_every_vendor_takes_limits_and_they_default_far_above_a_healthy_vendor(source):
    data = base()
    data["sources"] = {source: {"base_url": "https://example.test",
                                "limits": {"max_pages": 50, "request_deadline_seconds": 2.5}}}  # fmt: skip
    limits = getattr(parse_config(data).sources, source).limits
    assert (limits.max_pages, limits.request_deadline_seconds, limits.time_budget_minutes, limits.max_body_mb) == (
        50, 2.5, 120, 64)
    data["sources"] = {source: {"base_url": "https://example.test"}}
    assert getattr(parse_config(data).sources, source).limits == Limits()


@pytest.mark.parametrize("key, value, message", [
    ("max_pages", 0, "input should be greater than or equal to 1"),
    ("request_deadline_seconds", -1, "input should be greater than 0"),
    ("time_budget_minutes", "soon", "input should be a valid number, unable to parse string as a number"),
    ("max_body_mb", 10_000, "input should be less than or equal to 4096"),
    ("max_retries", 3, "unknown key"),
])  # fmt: skip
def test_a_bad_limit_is_a_config_error_naming_its_path(key, value, message):
    data = base()
    data["sources"] = {"jira": {"base_url": "https://example.test", "limits": {key: value}}}
    assert errors_of(data) == [f"sources.jira.limits.{key}: {message}"]

# --- all problems at once, and YAML syntax --------------------------------------------------------


def test_every_problem_of_a_file_is_reported_at_once():
    data = base()
    data["bogus"] = True  # 1
    data["metrics"]["change_failure_window"] = "soon"  # 2
    data["scorecard"]["perspectives"][1]["id"] = "financial"  # 3
    kpi_of(data, 0, 0, 0)["target"] = 110  # 4: equal to baseline
    kpi_of(data)["metric"] = "nope"  # 5
    del kpi_of(data, 1, 0, 2)["target"]  # 6
    kpi_of(data, 1, 0, 1)["scope"] = {"service": "billing"}  # 7
    errors = errors_of(data)
    assert sorted(errors) == sorted(
        [
            "bogus: unknown key",
            "metrics.change_failure_window: 'soon' is not a duration like 30m, 24h, 2d or 1w",
            "scorecard.perspectives[1].id: duplicate perspective id 'financial' "
            "(first at scorecard.perspectives[0].id)",
            "scorecard.perspectives[0].objectives[0].kpis[0].target: must differ from baseline 110",
            next(e for e in errors if e.startswith(f"{KPI}.metric: unknown metric 'nope'")),
            "scorecard.perspectives[1].objectives[0].kpis[2].target: field required",
            "scorecard.perspectives[1].objectives[0].kpis[1].scope.service: unknown service 'billing' "
            "(services: checkout, search)",
        ]
    )
    assert len(errors) == 7


def test_yaml_syntax_error_is_one_line_with_its_position():
    text = "scorecard:\n  name: [Broken\n  review_period: month\n"
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    (line,) = caught.value.errors
    assert line.startswith("config: not valid YAML: line ")
    assert "\n" not in line


def test_a_number_too_long_to_read_is_one_config_error_not_a_traceback(tmp_path):
    text = f"scorecard:\n  name: Long\n  amber_performance: {'9' * 5000}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    assert caught.value.errors == ["config: not valid YAML: a number of more than 4,300 digits: write a shorter one"]
    path = tmp_path / "scorecard.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_config(path)
    assert caught.value.errors == [f"{path}: not valid YAML (a number of more than 4,300 digits: write a shorter one)"]


def test_yaml_syntax_error_does_not_echo_the_offending_line():
    secret = "ghp_ThisIsNotAnEnvVarName123456"
    text = f"sources:\n  github:\n    token_env: {secret}: oops\n"
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    # the second ':' is at column 4 + len("token_env: ") + len(secret) + 1 = 4 + 11 + 31 + 1 = 47
    assert caught.value.errors == ["config: not valid YAML: line 3, column 47: mapping values are not allowed here"]
    assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["config: the file is empty (expected sections such as scorecard:)"]),
        ("# only a comment\n", ["config: the file is empty (expected sections such as scorecard:)"]),
        ("- a\n- b\n", ["config: expected a mapping of sections, got list"]),
        ("scorecard:\n", ["scorecard: expected a mapping of keys to values (a section)"]),
        ("scorecard: {name: X, perspectives: []}\n",
         ["scorecard.perspectives: list should have at least 1 item after validation, not 0"]),
    ],
)  # fmt: skip
def test_files_without_a_scorecard_give_one_clear_line(text, expected):
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text)
    assert caught.value.errors == expected


def test_empty_sections_take_their_defaults():
    data = base()
    data.update(sources=None, warehouse=None)
    config = parse_config(data)
    assert config.warehouse.url == "sqlite:///scorecard.db"
    assert config.sources.github is None


# --- scorecard settings ------------------------------------------------------------------------------


def test_dora_report_year_defaults_to_the_newest_and_unknown_years_are_refused():
    data = base()
    assert parse_config(data).scorecard.dora_report_year == 2024
    data["scorecard"]["dora_report_year"] = 2023
    assert parse_config(data).scorecard.dora_report_year == 2023
    data["scorecard"]["dora_report_year"] = 2019
    assert errors_of(data) == ["scorecard.dora_report_year: no DORA bands for 2019 (available: 2023, 2024)"]


@pytest.mark.parametrize("value", [0, 1, 1.2])
def test_amber_performance_is_a_fraction_strictly_between_0_and_1(value):
    data = base()
    data["scorecard"]["amber_performance"] = value
    (line,) = errors_of(data)
    assert line.startswith("scorecard.amber_performance: input should be ")


def test_negative_weight_is_refused():
    data = base()
    data["scorecard"]["perspectives"][0]["weight"] = -1
    assert errors_of(data) == ["scorecard.perspectives[0].weight: input should be greater than or equal to 0"]


def test_a_warehouse_password_in_the_file_is_refused_without_echoing_it():
    data = base()
    data["warehouse"] = {"url": "postgresql+psycopg://bi:s3cr3t-pw@db.internal/scorecard"}
    errors = errors_of(data)
    assert errors == [
        "warehouse.url: holds a password: put the URL in SCORECARD_WAREHOUSE_URL or the password in PGPASSWORD/.pgpass"
    ]
    data["warehouse"] = {"url": "postgresql+psycopg://bi@db.internal/scorecard"}
    assert parse_config(data).warehouse.url.endswith("/scorecard")


@pytest.mark.parametrize(
    ("query", "names"),
    [("?password=s3cr3t-pw", "password"), ("?sslmode=require&sslpassword=s3cr3t-pw", "sslpassword"),
     ("?PassWord=s3cr3t-pw&auth_token=s3cr3t-pw", "PassWord, auth_token"), ("?pass%77ord=s3cr3t-pw", "password")],
)  # fmt: skip
def test_a_warehouse_password_in_the_url_query_is_refused_without_echoing_it(query, names):
    data = base()
    data["warehouse"] = {"url": f"postgresql+psycopg://bi@db.internal/scorecard{query}"}
    assert errors_of(data) == [
        f"warehouse.url: holds a password (query parameter {names}): put the URL in SCORECARD_WAREHOUSE_URL"
        " or the password in PGPASSWORD/.pgpass"
    ]


def test_a_warehouse_url_with_harmless_query_parameters_is_accepted():
    data = base()
    url = "postgresql+psycopg://bi@db.internal/scorecard?sslmode=verify-full&sslkey=/etc/pg/client.key&passfile=/pgpass"
    data["warehouse"] = {"url": url}
    assert parse_config(data).warehouse.url == url
