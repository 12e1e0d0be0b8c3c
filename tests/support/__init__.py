"""Helpers shared by the tests: live stacks, the S3 server, fakes, envelope checks.

Test modules import helpers from here; conftest modules only define fixtures (issue 15), so no
test ever imports a conftest.
"""
