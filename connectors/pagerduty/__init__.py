"""The PagerDuty connector: incidents of the configured services, read page by page through the shared HTTP
client (client.py: PagerDuty's offset cap and 6-month ranges), mapped to canonical records (extract.py)."""
