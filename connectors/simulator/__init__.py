"""Synthetic data (`generate`) and the vendor API simulator that serves it.

- `history`: the records the simulator serves, as GitHub, PagerDuty, Jira and ServiceNow hold them (`build_history`),
  and each service's names there (`service_mapping`);
- `truth`: the same history as canonical records and the metrics they give (`truth_frames`, `truth_metrics`;
  pipelines/truth.py writes them to disk);
- `server`: one HTTP server for every vendor, a path prefix each (`running`, `serve`), and the `sources:`
  of a config fed by it (`source_sections`);
- `github_routes`, `github_graphql`, `pagerduty_routes`, `jira_routes`, `servicenow_routes`: each vendor's API;
- `faults`: seeded transport faults (429, 5xx, dropped connections, cut bodies, slow answers).

Nothing here reads the wall clock for data: the caller gives the window's end.
"""
