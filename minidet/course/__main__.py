"""`python -m minidet.course build OUT`: see minidet/course/book.py."""
import sys

from .book import main

sys.exit(main())
