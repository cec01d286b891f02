"""The course's own helpers: what the notebooks of notebooks/ import besides the library.

- `minidet.course.checks`: "implement, then check" — checkers that say pass or fail for a
  reader's own code (a conv backward, IoU, NMS, a loss term), against the library.
- `minidet.course.quick`: the small, easier dataset chapter 7 trains on in quick mode.
- `minidet.course.bandwidth`: bytes, flops and achieved bandwidth of the memory-bound layers
  against a plain copy (chapter 4).
- `minidet.course.head_study`: the fully connected head against the 1×1 convolutional one
  (chapter 7; `benchmarks/head_study.py` runs it).
- `minidet.course.book`: `python -m minidet.course build OUT` executes every chapter and
  writes it as HTML with its outputs and a table of contents.
- `minidet.course.variants`: chapter 7's quick run with one setting changed, the measured
  answers of the long exercises (`python -m minidet.course exercises OUT.json`).
"""
