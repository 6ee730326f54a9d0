"""The clerk-guard Django example project."""
