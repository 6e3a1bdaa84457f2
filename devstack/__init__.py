"""Development tools shared by the end-to-end tests and the benchmarks (not shipped with the app).

`devstack.stack` runs the real processes (Bot API emulator, action server, Rasa, app) on free loopback ports.
"""
