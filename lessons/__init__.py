"""Lesson and drill content, scenarios, grading and progress (grows in later issues)."""
