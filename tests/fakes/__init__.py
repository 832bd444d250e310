"""Local fakes of social networks, served over real HTTP on 127.0.0.1.

`server` holds the machinery every fake shares (server, journal, fault controls);
each network's fake lives in its own module (`network` is the Sandbox).
"""
