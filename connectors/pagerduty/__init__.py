"""The PagerDuty connector's package. In this release only its config section (config.py) exists: a configured
`sources.pagerduty` stops a run in its pre-flight, naming the section."""
