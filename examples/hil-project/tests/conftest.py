"""The lab's conftest: actorhw's fixtures come from its pytest plugin (installed with
actorhw), so there is nothing to import here; shared helpers would go here."""
