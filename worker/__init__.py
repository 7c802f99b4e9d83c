"""Running jobs: a supervisor that takes queued jobs and one child process per job."""
