"""The web console: server-rendered pages (Jinja2 + htmx) over the capability services.

Pages live under ``/console``; each tenant's pages under ``/console/t/{tenant_id}/``, so a
tenant in a URL is checked by the same :func:`quanyu.tenancy.service.authorize` the API
uses. Static assets (htmx, uPlot) are vendored in ``static/``: nothing is fetched at run
time.
"""
