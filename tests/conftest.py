"""Shared test configuration.

Fixture modules (one owner each):
- tests.fixtures.cli          run the installed `gitops` command
- tests.fixtures.services     Docker Engine, registry (plain and htpasswd), offline base images
- tests.fixtures.gitremotes   bare repos over file://, git smart HTTP (git http-backend), sshd
- tests.fixtures.tls          a CA and certificates made with openssl; a CONNECT proxy
"""

pytest_plugins = [
    "tests.fixtures.cli",
    "tests.fixtures.tls",  # before services, which imports it
    "tests.fixtures.services",
    "tests.fixtures.gitremotes",
]


import pytest  # noqa: E402


@pytest.fixture
def secrets_restored():
    """The secrets output.register_secret learned during a test are forgotten after it."""
    from gitops_cli import output

    saved, patterns = set(output._secrets), dict(output._short_patterns)
    yield
    output._secrets.clear()
    output._secrets.update(saved)
    output._short_patterns.clear()
    output._short_patterns.update(patterns)
