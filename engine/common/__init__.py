"""What every part of the engine shares: records, configs, events, metadata records, sizes."""
