"""Pure decisions: desired objects and status from (spec, observed, now). No I/O here."""
