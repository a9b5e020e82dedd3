"""Which webhookUrl an outbound send may name: https with a host, no credentials, and not aimed at
this network, unless the deployment allows local webhooks (the local stack's http receivers)."""

from __future__ import annotations

import pytest

from cxone_relay.workflows.outbound_sms.intake import webhook_url_problem

NOT_A_URL = "is not a URL"
NOT_HTTPS = "must be an https URL"
NO_HOST = "must name a host, without credentials"
LOCAL = "must not point at this network"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.org/status", None),
        ("https://hooks.example.org:8443/status?x=1", None),
        ("https://8.8.8.8/status", None),
        ("https://[2001:4860:4860::8888]/status", None),
        ("https://notlocalhost/status", None),  # a name, not an address: not this network
        ("http://hooks.example.org/status", NOT_HTTPS),
        ("ftp://hooks.example.org/status", NOT_HTTPS),
        ("hooks.example.org/status", NOT_HTTPS),
        ("https://[::1/status", NOT_A_URL),
        ("https://hooks.example.org:99999/status", NOT_A_URL),
        ("https://hooks.example.org:port/status", NOT_A_URL),
        ("https:///status", NO_HOST),
        ("https://user@hooks.example.org/status", NO_HOST),
        ("https://:secret@hooks.example.org/status", NO_HOST),
        ("https://localhost/status", LOCAL),
        ("https://LocalHost:8443/status", LOCAL),
        ("https://hooks.localhost/status", LOCAL),
        ("https://127.0.0.1/status", LOCAL),
        ("https://10.1.2.3/status", LOCAL),
        ("https://192.168.0.10/status", LOCAL),
        ("https://169.254.169.254/latest/meta-data", LOCAL),
        ("https://[::1]/status", LOCAL),
        ("https://[fe80::1]/status", LOCAL),
        ("https://[::ffff:127.0.0.1]/status", LOCAL),
        # Shorthand IPv4 that resolvers read as 127.0.0.1 or 169.254.169.254, and names with the
        # root's trailing dot: each names this network all the same.
        ("https://127.1/status", LOCAL),
        ("https://0x7f000001/status", LOCAL),
        ("https://2130706433/status", LOCAL),
        ("https://0177.0.0.1/status", LOCAL),
        ("https://0xa9.0xfe.0xa9.0xfe/latest/meta-data", LOCAL),
        ("https://127.0.0.1./status", LOCAL),
        ("https://localhost./status", LOCAL),
        ("https://hooks.example.org./status", None),
        ("https://0x8.0x8.0x8.0x8/status", None),  # 8.8.8.8 written in hex: a public address
    ],
)
def test_a_deployed_relay_calls_only_https_hosts_outside_its_network(url, problem):
    assert webhook_url_problem(url, allow_local=False) == problem


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:9000/hooks", None),
        ("https://localhost/hooks", None),
        ("http://hooks.localhost/hooks", None),
        ("ftp://127.0.0.1/hooks", NOT_HTTPS),
        ("http://user:pw@127.0.0.1/hooks", NO_HOST),
        ("http://[::1/hooks", NOT_A_URL),
    ],
)
def test_with_local_webhooks_allowed_http_and_this_network_are_accepted(url, problem):
    assert webhook_url_problem(url, allow_local=True) == problem
