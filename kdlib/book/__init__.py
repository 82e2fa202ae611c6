"""The book's views of the runs: rows, statistics, claims, names, reports, figures and the notebooks."""
