"""Passes over plait modules: lowering agent -> op."""
