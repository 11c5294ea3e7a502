"""The pipeline between capture and the sinks.

capture -> intake queue (`processor`) -> privacy stage (`privacy`: `serialize`, `redact`)
-> fan-out (`fanout`) -> one bounded queue and worker per destination (`processor`) -> sink.
"""
