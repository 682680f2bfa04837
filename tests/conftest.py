pytest_plugins = [
    "tests.plugins.database",
    "tests.plugins.s3",
    "tests.plugins.playback",
]
