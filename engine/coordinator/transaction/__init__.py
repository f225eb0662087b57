"""The transaction coordinator: transaction state, markers and transactional offsets."""
