"""Diagnostics: ArviZ conversion, detailed balance, Stein discrepancy, plots."""
