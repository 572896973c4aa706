"""The test suite: one folder per package of sal_kafka, and the house rules (test_house.py, test_docs.py)."""
