"""Full-scan external event pulls: subscriptions, pull records, the scan and its diff."""
