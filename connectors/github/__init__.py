"""The GitHub connector's package. In this release only its config section (config.py) exists: a configured
`sources.github` stops a run in its pre-flight, naming the section."""
