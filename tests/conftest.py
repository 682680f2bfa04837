pytest_plugins = [
    "tests.plugins.database",
]
