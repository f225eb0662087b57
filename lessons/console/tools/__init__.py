"""One module per Kafka tool; each has `run(ctx, args)`."""
