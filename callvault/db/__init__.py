"""Database layer: models, the engine wrapper, repositories and Alembic migrations."""
