"""Reliability and security: bad input, hostile keys, ACL, TLS, secrets, stateful model checks.

Everything here is marked ``reliability`` (tests that need a real redis-server also ``redis``)
and bounded in count and time, so it runs with the rest of the suite in CI.
"""
