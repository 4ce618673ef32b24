"""Mail reading: pure, raw bytes in, evidence out."""
