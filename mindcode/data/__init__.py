"""Datasets: converters to canonical records, templates, tokenization, and the MindRecord/.npy outputs."""
