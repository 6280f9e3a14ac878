"""Django's PostgreSQL backend with a pool whose checkout check costs no round trip (base.py)."""
