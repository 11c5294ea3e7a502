"""The pipeline between capture and the sinks: privacy stage, fan-out, one processor per
destination (`lc_observe.pipeline.fanout`; the processor is `lc_observe.dispatch`)."""
