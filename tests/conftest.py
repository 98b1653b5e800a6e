"""Shared test configuration.

Fixture modules (one owner each):
- tests.fixtures.cli          run the installed `gitops` command
- tests.fixtures.services     Docker Engine, registry (plain and htpasswd), offline base images
- tests.fixtures.gitremotes   bare repos over file://, git smart HTTP (git http-backend), sshd
"""

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.services",
    "tests.fixtures.gitremotes",
]
