"""Repository-root conftest: its presence puts this checkout first on sys.path for the tests."""
