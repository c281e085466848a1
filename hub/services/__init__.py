"""Use cases shared by the API, the CLI and the workers. Each takes a Session and never commits."""
