"""The DICE dataset format (docs/dice-format.md): read safely, validate, hash, split, convert.

Used by the datasets service to take uploads in, and by trainers to turn a
snapshot into the layout their framework expects. Plain Python plus Pillow.
"""
