"""The Kafka CLI console: Kafka 4.0's command-line tools, answering from a simulated cluster.

`ConsoleSession(cluster).run(line)` runs one line (`kafka-topics.sh --bootstrap-server
localhost:9092 --list`, or `echo hi | kafka-console-producer.sh ...`) and returns an `Output`
with what the real tool prints on stdout and stderr, byte for byte where its format is fixed,
and its exit code. Free of Django; the scenario runtime and the web layer build on it.
"""

from lessons.console.output import Output
from lessons.console.session import END_OF_INPUT, INTERRUPT, TOOLS, ConsoleSession

__all__ = ["END_OF_INPUT", "INTERRUPT", "TOOLS", "ConsoleSession", "Output"]
