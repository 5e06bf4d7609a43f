"""SLA policies and each conversation's SLA clocks, counted in exact business time."""
