"""The group coordinator: classic consumer groups, their protocol, offsets and records."""
