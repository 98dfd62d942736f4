"""article-qa: short extractive answers, with sources, from a folder of news articles."""

__version__ = "0.1.0"
