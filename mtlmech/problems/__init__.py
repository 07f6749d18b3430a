"""Built-in problem families; every module here is imported when the registry is first used."""
