"""What an engine host tells the rest of the process, as Django signals (receivers are wired
in their app's `ready`, e.g. webapp/workshops/apps.py).

`play_finished(sender, cluster_id, tag)`: a `host.play` that carried a `tag` has applied its
last step and run its clock to the end (also when the host that finished it is not the one
that started it: the tag is in the log's `play` entry). Sent once per play, from the host's
process, whether or not whoever asked for the play still waits for its answer.
"""

from __future__ import annotations

from django.dispatch import Signal

play_finished = Signal()
