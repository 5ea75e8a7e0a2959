"""Suite: from case files to a run and its records: collecting and planning the tests (collect.py), sharding
(sharding.py), running each with the report's details (collect.run_test, details.py, figures.py), and results files:
JSON documents, merging shards, baselines and JUnit XML (results.py).
"""
