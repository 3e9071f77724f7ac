"""The ServiceNow connector: config.py (`sources.servicenow`), client.py (Table API, keyset pages, references
resolved in batches), extract.py (records to canonical incident and change rows), source.py (`servicenow_source`)."""
