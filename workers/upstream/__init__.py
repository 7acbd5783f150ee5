"""HTTP to the gateways: bounded bodies, faults sorted into transient and permanent."""
