"""The Jira Cloud connector: config.py (`sources.jira`), client.py (REST API v3: JQL search by token, changelog
bulk fetch), extract.py (issues to canonical incident and change rows), source.py (`jira_source`)."""
