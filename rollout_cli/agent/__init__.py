"""`rollout agent`: a long-running process that drives every active rollout in a store,
acts on pushed alerts, and serves a status page and Prometheus metrics.

service.py puts it together; supervisor.py (a driver thread per rollout), alerts.py
(Alertmanager's webhook), http.py (the WSGI app), page.py, metrics.py and overview.py
(what both show) are its parts.
"""
