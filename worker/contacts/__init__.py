"""Who may be sent to: audiences (CSV, lists), stored contact groups, the opt-out list."""
