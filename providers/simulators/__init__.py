"""Fake providers: each backend's documented API served from memory, for the demo and the tests.

Nothing here is part of the broker. The registry names each simulator as `module:function`
(`ProviderSpec.simulator`) and imports it only when one is made, so importing the settings or
the registry loads none of these apps, and the adapters beside them never import a web server.

`kit` holds what every simulator's app shares (the knobs and faults, one error class and its
rendering, the `/_sim` inspection routes, RFC 3339 timestamps, the loopback server thread);
`book` the account every simulator keeps (lock, request log, ids, the refusal table);
`workload` the model server a rented instance runs; `stripe` a stand-in for Stripe's
PaymentIntent API. Each provider's package holds only what is its own: its seeded catalog, its
state, and its app speaking the provider's wire format.
"""
