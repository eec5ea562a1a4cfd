"""Datasets: SynthFaces (procedural faces with exact captions), its exports and readers."""
