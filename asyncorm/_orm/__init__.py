"""The ORM: declarative mapping, instance state, identity map, unit of work, sessions."""
