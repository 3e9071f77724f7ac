"""The files sources: canonical-record files (read.py, source.py) and manual KPI values (manual.py)."""
