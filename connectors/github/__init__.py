"""The GitHub connector: production deployments and merged pull requests of the configured repos, read with
GraphQL (queries.py) through the shared HTTP client (client.py), mapped to canonical records (extract.py)."""
