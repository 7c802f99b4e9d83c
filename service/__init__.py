"""The one layer that changes the catalog on a user's behalf: the pages and the CLI call it with
an Actor. Each action checks the actor's role first, then makes the change and its audit row in
one transaction."""
