"""Analysis over a `TraceStore`: anomalies (what changed and what got worse) and alerts.

Dependencies point one way: this package reads the store and returns model types; views
and the CLI display what it returns.
"""
