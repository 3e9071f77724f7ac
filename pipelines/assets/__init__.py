"""The scorecard's Dagster assets, partitioned by UTC day (pipelines.partitions).

    incidents, changes, deployments, pull_requests   records updated in the window, upserted from every source
                                                     (one step, `facts`: the sources read at once)
    metric_values                                    every week / month / review period the updated records touch
    kpi_scores, node_scores                          the touched review periods and the next one (its trend moved)
    metric_dictionary                                the metric definitions (not partitioned)
    kpi_comments, actions                            the review's commentary and action log (not partitioned)
    kpi_alerts                                       the latest complete review period's escalations, posted once
    scorecard_report                                 the HTML report of the latest complete review period (report.dir)

Every partitioned asset has `BackfillPolicy.single_run()`: a backfill of a range is one run whose
assets see the whole range as one time window, so each source is read once for the range.
"""

from pipelines.assets.alerts import kpi_alerts
from pipelines.assets.facts import facts
from pipelines.assets.metrics import metric_dictionary, metric_values
from pipelines.assets.report import scorecard_report
from pipelines.assets.review import review_log
from pipelines.assets.scores import scorecard_scores

ASSETS = [facts, metric_values, scorecard_scores, metric_dictionary, review_log, kpi_alerts, scorecard_report]
