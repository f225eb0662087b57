"""The simulation kernel: the logical clock and scheduler, the network, the command log, limits."""
