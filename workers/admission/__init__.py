"""Admission to a paid call: limits shared by every worker and the daily budget (Redis + Lua)."""
