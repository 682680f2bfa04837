pytest_plugins = [
    "tests.plugins.processes",
    "tests.plugins.database",
    "tests.plugins.cli",
    "tests.plugins.twilio_sim",
    "tests.plugins.s3",
    "tests.plugins.playback",
    "tests.plugins.faults",
]
