"""Text utilities shared by every kind: long-document windows."""
