"""Small rendering helpers shared by the pages (formatting, job status, errors)."""
