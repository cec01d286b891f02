"""`python -m minidet.course build OUT` (minidet/course/book.py) and `exercises OUT.json` (variants.py)."""
import sys

from .book import main

sys.exit(main())
