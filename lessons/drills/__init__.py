"""Drills: the drill bank (data files in lessons/content/drills/), grading, answer keys computed
by the scenario runner, quizzes, mock interviews and spaced review (FSRS).

Pure modules (no Django): `bank`, `grading`, `numbers`, `keys`, `scheduler`, `quiz`.
Django: `models`, `progress`, the `verify_drills` management command.
"""
