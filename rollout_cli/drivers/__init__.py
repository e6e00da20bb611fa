"""I/O drivers: they perform the actions the pure engine emits and return plain outcome data.

- ``rollout_cli.drivers.http``: HTTP requests with policy-driven retries (httpx + tenacity).
- ``rollout_cli.drivers.request``: what is sent (``HttpRequest``, ``RetryPolicy``), built
  without httpx, so that validation can build it too.
- ``rollout_cli.drivers.metrics``: a tick's metric queries, all at once, through the
  providers of ``rollout_cli.providers``.
- ``rollout_cli.drivers.expect``: pure checks of a response (status, JMESPath conditions, captures).
- ``rollout_cli.drivers.command``: local commands with a timeout that kills the process group.

Nothing is imported here on purpose: ``import rollout_cli.drivers`` must stay cheap so that
``rollout --help`` does not pay for httpx, tenacity or jmespath. Import the submodules.
"""
