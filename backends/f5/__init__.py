"""F5 BIG-IP backend: load balancers as AS3 declarations (see translate)."""
