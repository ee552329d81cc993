"""What operators and gateways reach from outside: metrics, health, logs, the report receiver."""
